import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../observe/logger.js';
import { inspectPair, PairError, type CertificateInfo, type CertificatePair } from './certificate.js';

export interface LoadedPair {
  pair: CertificatePair;
  info: CertificateInfo;
}

/** Reads and checks tls.certFile + tls.keyFile; the error message names the file at fault. */
export async function readPairFiles(certFile: string, keyFile: string): Promise<LoadedPair> {
  const [certPem, keyPem] = await Promise.all([readNamed('tls.certFile', certFile), readNamed('tls.keyFile', keyFile)]);
  const pair = { certPem, keyPem };
  return { pair, info: inspectNamed(pair, certFile, keyFile) };
}

function inspectNamed(pair: CertificatePair, certFile: string, keyFile: string): CertificateInfo {
  try {
    return inspectPair(pair);
  } catch (err) {
    if (!(err instanceof PairError)) throw err;
    const where =
      err.part === 'certificate'
        ? `tls.certFile ${certFile}`
        : err.part === 'key'
          ? `tls.keyFile ${keyFile}`
          : `tls.certFile ${certFile} + tls.keyFile ${keyFile}`;
    throw new Error(`${where}: ${err.message}`);
  }
}

async function readNamed(key: string, file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new Error(`${key} ${file}: cannot read: ${(err as Error).message}`);
  }
}

export interface PairWatchOptions {
  certFile: string;
  keyFile: string;
  /** Safety net for file systems where fs.watch reports nothing (NFS, some overlay setups). */
  pollMs: number;
  /** certbot and cert-manager replace the two files one after the other; wait for both. */
  debounceMs: number;
  logger: Logger;
  onChange(loaded: LoadedPair): void;
}

/**
 * Watches the directories rather than the files: certbot swaps symlinks and Kubernetes secret
 * volumes swap a `..data` symlink, so the watched names themselves never see an event. Every
 * event only triggers a re-read that compares contents, which makes spurious events harmless.
 */
export function watchPairFiles(initial: CertificatePair, options: PairWatchOptions): { reread(): void; close(): void } {
  const { certFile, keyFile, logger } = options;
  let served = initial;
  let lastRejected: string | null = null;
  let debounce: NodeJS.Timeout | undefined;
  let running: Promise<void> | null = null;
  let rerun = false;
  let closed = false;

  const check = async (): Promise<void> => {
    try {
      const [certPem, keyPem] = await Promise.all([readNamed('tls.certFile', certFile), readNamed('tls.keyFile', keyFile)]);
      if (closed || (certPem === served.certPem && keyPem === served.keyPem)) return;
      const pair = { certPem, keyPem };
      const info = inspectNamed(pair, certFile, keyFile);
      served = pair;
      lastRejected = null;
      logger.info(
        { certFile, serial: info.serial, notAfter: info.notAfter.toISOString() },
        'tls: certificate files changed, new connections use the new certificate',
      );
      options.onChange({ pair, info });
    } catch (err) {
      // Logged once per distinct problem, not at every poll while the files stay broken.
      const message = (err as Error).message;
      if (message === lastRejected) return;
      lastRejected = message;
      logger.error(
        { err: message, certFile, keyFile },
        'tls: new certificate files are unusable, still serving the previous certificate',
      );
    }
  };

  // One check at a time; events arriving meanwhile collapse into one more run.
  const trigger = (): void => {
    if (closed) return;
    if (running) {
      rerun = true;
      return;
    }
    running = check().finally(() => {
      running = null;
      if (rerun) {
        rerun = false;
        trigger();
      }
    });
  };

  const schedule = (): void => {
    clearTimeout(debounce);
    debounce = setTimeout(trigger, options.debounceMs);
    debounce.unref();
  };

  const watchers: FSWatcher[] = [];
  for (const dir of new Set([path.dirname(certFile), path.dirname(keyFile)])) {
    try {
      const watcher = watch(dir, { persistent: false }, schedule);
      watcher.on('error', (err) => {
        logger.warn({ dir, err: err.message }, 'tls: cannot watch certificate directory, relying on polling');
        watcher.close();
      });
      watchers.push(watcher);
    } catch (err) {
      logger.warn({ dir, err: (err as Error).message }, 'tls: cannot watch certificate directory, relying on polling');
    }
  }
  const poll = setInterval(trigger, options.pollMs);
  poll.unref();

  return {
    reread: trigger,
    close() {
      closed = true;
      clearTimeout(debounce);
      clearInterval(poll);
      for (const watcher of watchers) watcher.close();
    },
  };
}
