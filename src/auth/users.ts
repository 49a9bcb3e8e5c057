/**
 * The user table: the htpasswd file as last read successfully, kept current while the proxy runs.
 *
 * The file is the operator's, edited by hand, by `htpasswd`, by `registry-gate passwd`, or swapped
 * by a secret mount. A bad edit must not lock everybody out, so a file that cannot be used is
 * reported and the previous table stays in force.
 */
import { createHash, randomInt } from 'node:crypto';
import type { Logger } from '../observe/logger.js';
import { decodeText, WatchedFile, type FileRead, type WatchOptions } from '../files/watched-file.js';
import { bcryptCost, cheapEntriesWarning, parseHtpasswd, type SkippedLine } from './htpasswd.js';

/** What the store needs from the verify pool (a fake in tests). */
export interface PasswordChecker {
  compare(password: string, hash: string, client?: string): Promise<boolean>;
}

export interface UserTableChange {
  users: number;
  skipped: SkippedLine[];
}

export interface UserStoreOptions extends WatchOptions {
  logger: Logger;
  pool: PasswordChecker;
  onChange?: (change: UserTableChange) => void;
  /** The CLI as the operator runs it, for the "add a user with" hint; `registry-gate` by default. */
  selfCommand?: string;
}

/** One password check: `known` tells a wrong password from a name the table does not hold. */
export type PasswordCheck = { ok: true; stamp: string } | { ok: false; known: boolean };

/** Cost used for unknown users when the file has no entries: `passwd add`'s default. */
const DEFAULT_DUMMY_COST = 10;
const BCRYPT_ALPHABET = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/**
 * A syntactically valid bcrypt hash that matches nothing known: checking a password against it
 * costs exactly as much as against a real entry of that cost, so response time does not reveal
 * whether a user exists.
 */
export function makeDummyHash(cost: number): string {
  let body = '';
  for (let i = 0; i < 53; i++) body += BCRYPT_ALPHABET[randomInt(64)];
  return `$2y$${String(cost).padStart(2, '0')}$${body}`;
}

/**
 * The highest cost in the table: an unknown user then never answers faster than the slowest
 * real check (with the most common cost, a cost-12 user answered in 427 ms and an unknown one
 * in 6.6 ms, which told an attacker which names exist).
 */
export function dummyCost(hashes: Iterable<string>): number {
  let highest: number | null = null;
  for (const hash of hashes) {
    const cost = bcryptCost(hash);
    if (cost !== null && (highest === null || cost > highest)) highest = cost;
  }
  return highest ?? DEFAULT_DUMMY_COST;
}

/**
 * What a token remembers of the entry it was issued under: a changed password or a removed user
 * changes it, so that user's tokens stop working at their next request. A digest of the bcrypt
 * string, which holds the salt: without the salt it is no help in guessing the password.
 */
export function credentialStamp(hash: string): string {
  return createHash('sha256').update(hash).digest('base64url').slice(0, 16);
}

type FileState = 'unknown' | 'missing' | 'loaded';

export class UserStore {
  private users = new Map<string, string>();
  /** credentialStamp of every entry, made once per table: asked on every Bearer request. */
  private stamps = new Map<string, string>();
  private dummyHash = makeDummyHash(DEFAULT_DUMMY_COST);
  /** Bumped whenever the table is replaced; a check that straddles a reload is redone. */
  private generation = 0;
  private fileState: FileState = 'unknown';
  private fingerprint: string | null = null;

  private readonly watched: WatchedFile;
  private readonly logger: Logger;
  private readonly pool: PasswordChecker;
  private readonly onChange: ((change: UserTableChange) => void) | undefined;
  private readonly selfCommand: string;

  private constructor(file: string, options: UserStoreOptions) {
    this.watched = new WatchedFile(file, (read) => this.use(read), options);
    this.logger = options.logger;
    this.pool = options.pool;
    this.onChange = options.onChange;
    this.selfCommand = options.selfCommand ?? 'registry-gate';
  }

  static async open(file: string, options: UserStoreOptions): Promise<UserStore> {
    const store = new UserStore(file, options);
    await store.watched.start();
    return store;
  }

  get filePath(): string {
    return this.watched.file;
  }

  /** The current entry's stamp (see credentialStamp), null for a user not in the table. */
  stamp(user: string): string | null {
    return this.stamps.get(user) ?? null;
  }

  userCount(): number {
    return this.users.size;
  }

  /** Whether `password` is `user`'s (see check). */
  async verify(user: string, password: string, client = ''): Promise<boolean> {
    return (await this.check(user, password, client)).ok;
  }

  /** Re-read the file now (safe to call concurrently). */
  reload(): Promise<void> {
    return this.watched.read();
  }

  async close(): Promise<void> {
    await this.watched.close();
  }

  /**
   * One bcrypt check against the table as it is when the check ends (a reload meanwhile redoes
   * it). May reject with VerifyBusyError when the pool is saturated; `client` is whose line in the
   * pool the check waits in. Remembering and merging checks is the identify chain's.
   */
  async check(user: string, password: string, client = ''): Promise<PasswordCheck> {
    for (;;) {
      const generation = this.generation;
      const hash = this.users.get(user);
      const ok = await this.pool.compare(password, hash ?? this.dummyHash, client);
      if (generation !== this.generation) continue;
      if (hash === undefined) return { ok: false, known: false };
      return ok ? { ok: true, stamp: this.stamps.get(user)! } : { ok: false, known: true };
    }
  }

  private use(read: FileRead): void {
    if (!read.ok) {
      this.readFailed(read.error);
      return;
    }
    const bytes = read.bytes;
    const fingerprint = createHash('sha256').update(bytes).digest('hex');
    if (fingerprint === this.fingerprint) return;

    const text = decodeText(bytes);
    if (text === null) {
      this.keepLastGood('the file is not UTF-8 text');
      return;
    }
    const parsed = parseHtpasswd(text);
    if (parsed.users.size === 0 && parsed.skipped.length > 0) {
      this.logSkipped(parsed.skipped);
      this.keepLastGood('no line in the file is a usable bcrypt entry');
      return;
    }
    this.replaceTable(parsed.users, fingerprint);
    this.logSkipped(parsed.skipped);
    this.logger.info({ file: this.watched.file, users: parsed.users.size, skipped: parsed.skipped.length }, 'htpasswd loaded');
    const cheap = cheapEntriesWarning(parsed.users);
    if (cheap) this.logger.warn({ file: this.watched.file }, `htpasswd: ${cheap}`);
    this.onChange?.({ users: parsed.users.size, skipped: parsed.skipped });
  }

  private replaceTable(users: Map<string, string>, fingerprint: string | null): void {
    this.users = users;
    this.stamps = new Map([...users].map(([user, hash]) => [user, credentialStamp(hash)]));
    this.fingerprint = fingerprint;
    this.fileState = fingerprint === null ? 'missing' : 'loaded';
    this.generation++;
    this.dummyHash = makeDummyHash(dummyCost(users.values()));
  }

  private readFailed(err: NodeJS.ErrnoException): void {
    if (err.code === 'ENOENT') {
      if (this.fileState === 'unknown') {
        this.fileState = 'missing';
        this.logger.warn(
          { file: this.watched.file },
          `htpasswd file ${this.watched.file} does not exist, so nobody can log in; ` +
            `add a user with: ${this.selfCommand} passwd add USER --file ${this.watched.file}`,
        );
        return;
      }
      if (this.fileState === 'missing') return;
      // Deleting the file is far more often an editor's or a deploy's intermediate step than a
      // wish to lock everyone out; emptying the file is the way to remove all users.
      this.keepLastGood('the file was removed');
      return;
    }
    this.keepLastGood(`it cannot be read (${err.code ?? err.message})`);
  }

  private keepLastGood(why: string): void {
    const consequence =
      this.fileState === 'loaded'
        ? `keeping the ${this.users.size} user(s) loaded before`
        : 'nobody can log in until it is fixed';
    this.logger.error({ file: this.watched.file, users: this.users.size }, `htpasswd file not used because ${why}; ${consequence}`);
  }

  private logSkipped(skipped: SkippedLine[]): void {
    for (const s of skipped) {
      this.logger.warn({ file: this.watched.file, line: s.line, user: s.user, reason: s.reason }, `htpasswd line ${s.line} skipped: ${s.reason}`);
    }
  }
}
