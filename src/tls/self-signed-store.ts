import { createPrivateKey } from 'node:crypto';
import path from 'node:path';
import type { Logger } from '../observe/logger.js';
import { inspectPair, normalizeName, type CertificateInfo, type CertificatePair } from './certificate.js';
import { ensurePrivateDir, readIfExists, writeFileAtomic } from './files-util.js';
import { createSelfSigned, type SelfSignedKey } from './self-signed.js';

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
export async function loadOrCreateSelfSigned(stateDir: string, names: string[], keyType: SelfSignedKey, logger: Logger): Promise<StoredSelfSigned> {
  const { dir, certFile, keyFile } = locate(stateDir);
  await ensurePrivateDir(dir);
  const [certPem, keyPem] = await Promise.all([readIfExists(certFile), readIfExists(keyFile)]);
  if (certPem !== null && keyPem !== null) {
    const pair = { certPem, keyPem };
    const problem = reuseProblem(pair, names);
    if (problem === null) {
      logger.info({ certFile }, 'tls: using the stored self-signed certificate; give this file to clients as their CA');
      const stored = keyTypeOf(pair);
      // Clients trust this very certificate: a key type alone is no reason to break that.
      if (stored !== keyType) {
        logger.info(
          { certFile, key: stored, selfSignedKey: keyType },
          `tls: the stored self-signed certificate keeps its ${stored} key although tls.selfSignedKey is ${keyType}; delete ${certFile} and its key to make a new one (clients then need the new file)`,
        );
      }
      return { pair, info: inspectPair(pair), certFile };
    }
    logger.info({ certFile, reason: problem }, 'tls: replacing the stored self-signed certificate');
  }
  return createAndStoreSelfSigned(stateDir, names, keyType, logger);
}

export async function createAndStoreSelfSigned(stateDir: string, names: string[], keyType: SelfSignedKey, logger: Logger): Promise<StoredSelfSigned> {
  const { certFile, keyFile } = locate(stateDir);
  const pair = await createSelfSigned(names, VALIDITY_DAYS, keyType);
  // Key first: a crash in between leaves a mismatched pair, which the next start replaces.
  await writeFileAtomic(keyFile, pair.keyPem, 0o600);
  await writeFileAtomic(certFile, pair.certPem, 0o644);
  logger.info(
    { certFile, names, key: keyType },
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

function keyTypeOf(pair: CertificatePair): SelfSignedKey | 'another key type' {
  const key = createPrivateKey(pair.keyPem);
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ecdsa-p256';
  if (key.asymmetricKeyType === 'rsa' && key.asymmetricKeyDetails?.modulusLength === 2048) return 'rsa-2048';
  return 'another key type';
}

function locate(stateDir: string): { dir: string; certFile: string; keyFile: string } {
  const dir = path.resolve(stateDir, 'tls');
  return { dir, certFile: path.join(dir, 'self-signed-cert.pem'), keyFile: path.join(dir, 'self-signed-key.pem') };
}
