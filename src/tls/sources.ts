import type { TlsConfig } from '../config/types.js';
import type { Logger } from '../observe/logger.js';
import { readPairFiles, watchPairFiles } from './files.js';
import { createAndStoreSelfSigned, loadOrCreateSelfSigned, SELF_SIGNED_REFRESH_DAYS, type StoredSelfSigned } from './self-signed-store.js';
import type { SelfSignedKey } from './self-signed.js';
import type { CertificateSlot } from './slot.js';
import { Alarm } from './timing.js';

/** Fills the slot at start and keeps it current until closed. */
export interface CertificateSource {
  start(): Promise<void>;
  /** SIGHUP: read the files now instead of at the next change or poll (sources that read files). */
  reread?(): void;
  close(): void;
}

const DAY_MS = 24 * 60 * 60 * 1000;

export function selfSignedSource(stateDir: string, names: string[], keyType: SelfSignedKey, slot: CertificateSlot, logger: Logger): CertificateSource {
  const alarm = new Alarm();
  const install = (stored: StoredSelfSigned): void => {
    slot.replace({ pair: stored.pair, info: stored.info, origin: 'self-signed' });
    alarm.set(new Date(stored.info.notAfter.getTime() - SELF_SIGNED_REFRESH_DAYS * DAY_MS), () => {
      createAndStoreSelfSigned(stateDir, names, keyType, logger).then(
        (fresh) => {
          install(fresh);
          logger.warn({ certFile: fresh.certFile }, 'tls: the self-signed certificate was renewed; hand the new file to clients');
        },
        (err: Error) => logger.error({ err: err.message }, 'tls: cannot renew the self-signed certificate'),
      );
    });
  };
  return {
    async start() {
      install(await loadOrCreateSelfSigned(stateDir, names, keyType, logger));
    },
    close: () => alarm.clear(),
  };
}

export interface FilesTuning {
  pollMs: number;
  debounceMs: number;
}

export function filesSource(tls: TlsConfig, slot: CertificateSlot, logger: Logger, tuning: FilesTuning): CertificateSource {
  const certFile = tls.certFile!;
  const keyFile = tls.keyFile!;
  let watcher: { reread(): void; close(): void } | undefined;
  return {
    async start() {
      const { pair, info } = await readPairFiles(certFile, keyFile);
      slot.replace({ pair, info, origin: 'files' });
      if (info.notAfter.getTime() <= Date.now()) {
        logger.warn({ certFile, notAfter: info.notAfter.toISOString() }, 'tls: the certificate in tls.certFile has expired');
      }
      logger.info({ certFile, serial: info.serial, notAfter: info.notAfter.toISOString() }, 'tls: serving the certificate files, watching them for changes');
      watcher = watchPairFiles(pair, {
        certFile,
        keyFile,
        logger,
        pollMs: tuning.pollMs,
        debounceMs: tuning.debounceMs,
        onChange: (loaded) => slot.replace({ ...loaded, origin: 'files' }),
      });
    },
    reread: () => watcher?.reread(),
    close: () => watcher?.close(),
  };
}
