/**
 * The secret that signs registry tokens. It must outlive restarts (or every restart logs clients
 * out mid-push) and be the same for every replica (or a token from one is refused by another).
 */
import { createHash, randomBytes } from 'node:crypto';
import { link, mkdir, open, readFile, unlink } from 'node:fs/promises';
import path from 'node:path';

export interface SigningKey {
  /** Derived from the secret: replicas holding the same secret agree on it without coordination. */
  id: string;
  secret: Buffer;
}

/** Where the key lives (stateDir or Redis), same contract: the first writer wins, everyone reads its key. */
export interface KeyStore {
  load(): Promise<SigningKey>;
}

export const SIGNING_KEY_FILE = 'token-signing-key.json';
const SECRET_BYTES = 32;

export function newSecret(): Buffer {
  return randomBytes(SECRET_BYTES);
}

/** The key a stored base64 secret stands for; throws when it is not one. */
export function keyFromBase64(text: string): SigningKey {
  const secret = Buffer.from(text, 'base64');
  if (secret.length !== SECRET_BYTES) throw new Error(`the secret is ${secret.length} bytes, expected ${SECRET_BYTES}`);
  return { id: keyIdOf(secret), secret };
}

export function keyIdOf(secret: Buffer): string {
  return createHash('sha256').update(secret).digest('hex').slice(0, 16);
}

export function loadOrCreateSigningKey(stateDir: string): Promise<SigningKey> {
  return new FileKeyStore(stateDir).load();
}

interface KeyFile {
  version: 1;
  secret: string;
  createdAt: string;
}

export class FileKeyStore implements KeyStore {
  readonly file: string;

  constructor(private readonly stateDir: string) {
    this.file = path.join(stateDir, SIGNING_KEY_FILE);
  }

  async load(): Promise<SigningKey> {
    await mkdir(this.stateDir, { recursive: true, mode: 0o700 });
    const existing = await this.read();
    if (existing) return existing;
    await this.create();
    // Whoever won the race, the file now holds the key everybody uses.
    const key = await this.read(true);
    if (!key) throw new Error(`${this.file} vanished right after it was created`);
    return key;
  }

  /** null when the file does not exist. */
  private async read(retryPartial = false): Promise<SigningKey | null> {
    for (let attempt = 0; ; attempt++) {
      let text: string;
      try {
        text = await readFile(this.file, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw new Error(`cannot read the token signing key ${this.file}: ${(err as Error).message}`);
      }
      try {
        return decodeKeyFile(text);
      } catch (err) {
        // Only the no-hard-link fallback can expose a file being written; give its writer a moment.
        if (!retryPartial || attempt >= 20) {
          throw new Error(`the token signing key ${this.file} is corrupt (${(err as Error).message}); remove it to create a new one (this logs every client out)`);
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }

  /**
   * Written completely to a private temp file, then published with link(), which — unlike
   * rename() — fails when the target exists: two replicas starting together on a shared volume
   * cannot overwrite each other's key, and no reader ever sees a half-written file.
   */
  private async create(): Promise<void> {
    const content = encodeKeyFile(newSecret());
    const temp = path.join(this.stateDir, `.${SIGNING_KEY_FILE}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
    await writeDurably(temp, content);
    try {
      await link(temp, this.file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') return;
      if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'ENOSYS' || code === 'EXDEV') {
        await this.createExclusive(content);
        return;
      }
      throw err;
    } finally {
      await unlink(temp).catch(() => undefined);
    }
  }

  /** For file systems without hard links: exclusive create, readers retry until the content is whole. */
  private async createExclusive(content: string): Promise<void> {
    try {
      await writeDurably(this.file, content);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return;
      throw err;
    }
  }
}

/** Exclusive create, mode 0600, flushed to disk before anyone can be told the key exists. */
async function writeDurably(file: string, content: string): Promise<void> {
  const handle = await open(file, 'wx', 0o600);
  try {
    await handle.writeFile(content);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function encodeKeyFile(secret: Buffer): string {
  const file: KeyFile = { version: 1, secret: secret.toString('base64'), createdAt: new Date().toISOString() };
  return JSON.stringify(file, null, 2) + '\n';
}

function decodeKeyFile(text: string): SigningKey {
  const parsed = JSON.parse(text) as Partial<KeyFile>;
  if (parsed.version !== 1 || typeof parsed.secret !== 'string') throw new Error('unexpected content');
  return keyFromBase64(parsed.secret);
}
