import path from 'node:path';
import type { Logger } from '../observe/logger.js';
import { inspectPair, normalizeName, type CertificateInfo, type CertificatePair } from './certificate.js';
import { ensurePrivateDir, readIfExists, writeFileAtomic } from './files-util.js';
import { createSelfSigned } from './self-signed.js';

const VALIDITY_DAYS = 365;
/** Regenerated this long before expiry, leaving operators time to hand the new CA to clients. */
export const SELF_SIGNED_REFRESH_DAYS = 30;
const DAY_MS = 24 * 60 * 60 * 1000;

export interface StoredSelfSigned {
  pair: CertificatePair;
  info: CertificateInfo;
  certFile: string;
}

/**
 * Reuses `<stateDir>/tls/self-signed-{cert,key}.pem` across restarts, so clients that were given
 * the certificate keep trusting the proxy; makes a new one when it is missing, broken, about to
 * expire or made for other names.
 */
export async function loadOrCreateSelfSigned(stateDir: string, names: string[], logger: Logger): Promise<StoredSelfSigned> {
  const { dir, certFile, keyFile } = locate(stateDir);
  await ensurePrivateDir(dir);
  const [certPem, keyPem] = await Promise.all([readIfExists(certFile), readIfExists(keyFile)]);
  if (certPem !== null && keyPem !== null) {
    const pair = { certPem, keyPem };
    const problem = reuseProblem(pair, names);
    if (problem === null) {
      logger.info({ certFile }, 'tls: using the stored self-signed certificate; give this file to clients as their CA');
      return { pair, info: inspectPair(pair), certFile };
    }
    logger.info({ certFile, reason: problem }, 'tls: replacing the stored self-signed certificate');
  }
  return createAndStoreSelfSigned(stateDir, names, logger);
}

export async function createAndStoreSelfSigned(stateDir: string, names: string[], logger: Logger): Promise<StoredSelfSigned> {
  const { certFile, keyFile } = locate(stateDir);
  const pair = createSelfSigned(names, VALIDITY_DAYS);
  // Key first: a crash in between leaves a mismatched pair, which the next start replaces.
  await writeFileAtomic(keyFile, pair.keyPem, 0o600);
  await writeFileAtomic(certFile, pair.certPem, 0o644);
  logger.info(
    { certFile, names },
    'tls: created a self-signed certificate; clients must trust this file as a CA (docker: /etc/docker/certs.d/<host:port>/ca.crt)',
  );
  return { pair, info: inspectPair(pair), certFile };
}

function reuseProblem(pair: CertificatePair, names: string[]): string | null {
  let info: CertificateInfo;
  try {
    info = inspectPair(pair);
  } catch (err) {
    return (err as Error).message;
  }
  const wanted = [...new Set(names.map(normalizeName))].sort();
  const present = [...new Set(info.names)].sort();
  if (wanted.join(',') !== present.join(',')) return `made for ${present.join(', ')}, tls.names is now ${wanted.join(', ')}`;
  if (info.notAfter.getTime() - Date.now() < SELF_SIGNED_REFRESH_DAYS * DAY_MS) return `expires ${info.notAfter.toISOString()}`;
  return null;
}

function locate(stateDir: string): { dir: string; certFile: string; keyFile: string } {
  const dir = path.resolve(stateDir, 'tls');
  return { dir, certFile: path.join(dir, 'self-signed-cert.pem'), keyFile: path.join(dir, 'self-signed-key.pem') };
}
