import path from 'node:path';
import { crypto as acmeCrypto } from 'acme-client';
import type { CertificatePair } from '../certificate.js';
import { ensurePrivateDir, readIfExists, writeFileAtomic } from '../files-util.js';

export interface StoredAccount {
  keyPem: string;
  /** Null until registered with the current directory (a key can serve several CAs). */
  url: string | null;
}

export interface StoredCertificate {
  pair: CertificatePair;
  directoryUrl: string;
}

/** Where the account and the certificate are kept: this directory, or Redis for a fleet (fleet.ts). */
export type AcmeStore = Pick<AcmeStorage, 'init' | 'account' | 'saveAccountUrl' | 'certificate' | 'saveCertificate'>;

/**
 * What survives restarts under tls.acme.storageDir (0700): the account key + its URL, and the
 * current certificate + key with the directory that issued it (so switching from staging to
 * production orders a new one). Keys are 0600; every file is replaced atomically.
 */
export class AcmeStorage {
  constructor(private readonly dir: string) {}

  async init(): Promise<void> {
    await ensurePrivateDir(this.dir);
  }

  /** Creates the account key on first use; it identifies the account for good. */
  async account(directoryUrl: string): Promise<StoredAccount> {
    let keyPem = await readIfExists(this.file('account-key.pem'));
    if (keyPem === null) {
      keyPem = (await acmeCrypto.createPrivateEcdsaKey('P-256')).toString();
      await writeFileAtomic(this.file('account-key.pem'), keyPem, 0o600);
    }
    const meta = await this.readJson<{ directoryUrl: string; url: string }>('account.json');
    return { keyPem, url: meta?.directoryUrl === directoryUrl ? meta.url : null };
  }

  async saveAccountUrl(directoryUrl: string, url: string | null): Promise<void> {
    const body = url === null ? {} : { directoryUrl, url };
    await writeFileAtomic(this.file('account.json'), `${JSON.stringify(body, null, 2)}\n`, 0o600);
  }

  async certificate(): Promise<StoredCertificate | null> {
    const [certPem, keyPem, meta] = await Promise.all([
      readIfExists(this.file('certificate.pem')),
      readIfExists(this.file('certificate-key.pem')),
      this.readJson<{ directoryUrl: string }>('certificate.json'),
    ]);
    if (certPem === null || keyPem === null || !meta) return null;
    return { pair: { certPem, keyPem }, directoryUrl: meta.directoryUrl };
  }

  async saveCertificate(stored: StoredCertificate): Promise<void> {
    // Key first: an interrupted save leaves a mismatched pair, which the next start ignores and re-orders.
    await writeFileAtomic(this.file('certificate-key.pem'), stored.pair.keyPem, 0o600);
    await writeFileAtomic(this.file('certificate.pem'), stored.pair.certPem, 0o644);
    await writeFileAtomic(
      this.file('certificate.json'),
      `${JSON.stringify({ directoryUrl: stored.directoryUrl }, null, 2)}\n`,
      0o644,
    );
  }

  private file(name: string): string {
    return path.join(this.dir, name);
  }

  private async readJson<T>(name: string): Promise<T | null> {
    const text = await readIfExists(this.file(name));
    if (text === null) return null;
    try {
      return JSON.parse(text) as T;
    } catch {
      return null;
    }
  }
}
