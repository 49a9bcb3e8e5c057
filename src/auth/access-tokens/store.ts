/**
 * Where access tokens live: in `stateDir/tokens/` (one file per token) or, with `redis`, in Redis
 * for every replica. Lookups are answered from memory — a login and a registry-token re-check
 * cost a map read — and that memory follows the store: a file watch (and a poll behind it), or
 * a Redis message per change (and a full read behind it), so a token revoked anywhere is refused
 * everywhere within a second.
 *
 * One file per token, written by link() and removed by unlink(), because the CLI (as root) and the
 * proxy (as its own user, through /gate/v1/tokens) both write: nothing is ever read, changed and
 * written back, so no write can undo another. `last used` is a file (a Redis field) of its own,
 * written at most once a minute per token.
 */
import { watch, type FSWatcher } from 'node:fs';
import { chown, link, mkdir, readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from '../../observe/logger.js';
import { OperatorError } from '../../observe/operator-error.js';
import { connectAtStart, describeRedis, redisClient, type RedisHealth, type RedisTarget } from '../../state/redis-client.js';
import { readRecord, type StoredToken } from './record.js';

export const LAST_USED_INTERVAL_MS = 60_000;

export interface TokenStore {
  get(name: string): StoredToken | undefined;
  all(): StoredToken[];
  /** false: the name is taken. */
  create(record: StoredToken): Promise<boolean>;
  /** false: no such token. */
  revoke(name: string): Promise<boolean>;
  /** Best effort, at most once a minute per token: a lost write only makes `last used` older. */
  markUsed(name: string, at: number): void;
  lastUsed(name: string): Promise<number | null>;
  /** Read the store again now (the CLI, tests); the proxy's copy follows by itself. */
  refresh(): Promise<void>;
  close(): Promise<void>;
}

export interface StoreOptions {
  logger: Logger | null;
  /** Follow changes made elsewhere (the proxy); the CLI reads once. */
  follow: boolean;
  health?: RedisHealth;
}

abstract class Remembered {
  protected tokens = new Map<string, StoredToken>();
  private readonly usedWritten = new Map<string, number>();
  /**
   * Bumped by every read of the whole store and every change made here: a read that started
   * before a revoke must not put the revoked token back when it ends.
   */
  protected generation = 0;

  get(name: string): StoredToken | undefined {
    return this.tokens.get(name);
  }

  all(): StoredToken[] {
    return [...this.tokens.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  markUsed(name: string, at: number): void {
    const last = this.usedWritten.get(name);
    if (last !== undefined && at - last < LAST_USED_INTERVAL_MS) return;
    this.usedWritten.set(name, at);
    this.writeUsed(name, at).catch(() => {});
  }

  protected changed(name: string): void {
    this.generation++;
    this.usedWritten.delete(name);
  }

  protected abstract writeUsed(name: string, at: number): Promise<void>;
}

const TOKEN_FILE = /^([A-Za-z0-9][A-Za-z0-9._-]{0,63})\.json$/;
const POLL_MS = 2_000;

export class FileTokenStore extends Remembered implements TokenStore {
  private watcher: FSWatcher | null = null;
  private poll: NodeJS.Timeout | null = null;
  private pending: NodeJS.Timeout | null = null;
  /** Owner of the state directory: files the CLI writes as root are handed to it, so the proxy can read them. */
  private owner: { uid: number; gid: number } | null = null;
  private missingStateDir: string | null = null;

  private constructor(
    readonly dir: string,
    private readonly logger: Logger | null,
  ) {
    super();
  }

  static async open(stateDir: string, options: StoreOptions): Promise<FileTokenStore> {
    const store = new FileTokenStore(path.join(stateDir, 'tokens'), options.logger);
    // The proxy made stateDir before; the CLI must not make it (as root it would be root's), and
    // without it there are no tokens yet.
    if (!(await stat(stateDir).catch(() => null))) {
      store.missingStateDir = stateDir;
      return store;
    }
    await mkdir(store.dir, { mode: 0o700 }).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw new OperatorError(`stateDir: cannot create ${store.dir} for access tokens (${err.code ?? err.message}); let the proxy's user write stateDir`);
    });
    if (process.getuid?.() === 0) {
      const info = await stat(stateDir);
      if (info.uid !== 0) {
        store.owner = { uid: info.uid, gid: info.gid };
        await chown(store.dir, info.uid, info.gid);
      }
    }
    await store.refresh();
    if (options.follow) {
      try {
        store.watcher = watch(store.dir, () => store.soon());
        store.watcher.on('error', () => undefined);
      } catch {
        // Polling alone then (a file system without inotify).
      }
      store.poll = setInterval(() => store.soon(), POLL_MS);
      store.poll.unref();
    }
    return store;
  }

  async refresh(): Promise<void> {
    const mine = ++this.generation;
    const next = new Map<string, StoredToken>();
    for (const file of await readdir(this.dir).catch(() => [] as string[])) {
      const match = TOKEN_FILE.exec(file);
      if (!match) continue;
      const text = await readFile(path.join(this.dir, file), 'utf8').catch(() => null);
      if (text === null) continue;
      let record: StoredToken | null = null;
      try {
        record = readRecord(JSON.parse(text));
      } catch {
        record = null;
      }
      if (record === null || record.name !== match[1]) {
        this.logger?.warn({ file: path.join(this.dir, file) }, `access token file ${path.join(this.dir, file)} cannot be read as a token; it is ignored (remove it, or create the token again)`);
        continue;
      }
      next.set(record.name, record);
    }
    if (mine === this.generation) this.tokens = next;
  }

  async create(record: StoredToken): Promise<boolean> {
    if (this.missingStateDir) throw new OperatorError(`stateDir: ${this.missingStateDir} does not exist; start the proxy once (it creates it), or create it owned by the proxy's user`, 1);
    const file = path.join(this.dir, `${record.name}.json`);
    const temp = path.join(this.dir, `.${record.name}.${randomBytes(6).toString('hex')}.tmp`);
    await writeFile(temp, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
    try {
      if (this.owner) await chown(temp, this.owner.uid, this.owner.gid);
      await unlink(path.join(this.dir, `${record.name}.used`)).catch(() => undefined);
      // link() fails when the name exists: two creators of one name cannot both win.
      await link(temp, file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    } finally {
      await unlink(temp).catch(() => undefined);
    }
    this.changed(record.name);
    this.tokens.set(record.name, record);
    return true;
  }

  async revoke(name: string): Promise<boolean> {
    const removed = await unlink(path.join(this.dir, `${name}.json`)).then(
      () => true,
      (err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? false : Promise.reject(err)),
    );
    await unlink(path.join(this.dir, `${name}.used`)).catch(() => undefined);
    this.tokens.delete(name);
    this.changed(name);
    return removed;
  }

  async lastUsed(name: string): Promise<number | null> {
    const text = await readFile(path.join(this.dir, `${name}.used`), 'utf8').catch(() => null);
    const at = text === null ? NaN : Date.parse(text.trim());
    return Number.isNaN(at) ? null : at;
  }

  protected async writeUsed(name: string, at: number): Promise<void> {
    if (!this.tokens.has(name)) return;
    const temp = path.join(this.dir, `.${name}.${randomBytes(6).toString('hex')}.used.tmp`);
    await writeFile(temp, `${new Date(at).toISOString()}\n`, { mode: 0o600 });
    await rename(temp, path.join(this.dir, `${name}.used`)).catch(() => unlink(temp));
  }

  async close(): Promise<void> {
    this.watcher?.close();
    if (this.poll) clearInterval(this.poll);
    if (this.pending) clearTimeout(this.pending);
  }

  /** Changes come in bursts (a temp file, a link, an unlink): read once after them. */
  private soon(): void {
    if (this.pending) return;
    this.pending = setTimeout(() => {
      this.pending = null;
      this.refresh().catch(() => undefined);
    }, 25);
  }
}

export const TOKENS_KEY = 'registry-gate:access-tokens';
export const TOKENS_USED_KEY = 'registry-gate:access-tokens:used';
export const TOKENS_CHANNEL = 'registry-gate:access-tokens';
const FULL_READ_MS = 10_000;

/**
 * Records are sealed (state/secret-box.ts) under their name: whoever can write Redis still cannot
 * plant a token, and cannot move one to another name.
 */
export class RedisTokenStore extends Remembered implements TokenStore {
  private subscriber: Redis | null = null;
  private timer: NodeJS.Timeout | null = null;

  private constructor(
    private readonly target: RedisTarget,
    private readonly redis: Redis,
    private readonly logger: Logger | null,
  ) {
    super();
  }

  static async open(target: RedisTarget, options: StoreOptions): Promise<RedisTokenStore> {
    const effect = { away: 'access tokens are checked against the copy held in memory; none can be created or revoked until Redis is back', back: 'access tokens follow Redis again' };
    const watched = (redis: Redis, role: string): Redis => (options.health && options.logger ? options.health.watch(redis, role, effect, options.logger, target) : redis);
    const store = new RedisTokenStore(target, watched(redisClient(target, 1), 'access tokens'), options.logger);
    const clients = [store.redis];
    if (options.follow) {
      store.subscriber = watched(redisClient(target, 1), 'access tokens (changes)');
      clients.push(store.subscriber);
    }
    await connectAtStart(clients, target, 'access tokens');
    await store.refresh();
    if (store.subscriber) {
      const subscriber = store.subscriber;
      subscriber.on('message', (channel: string, name: string) => {
        if (channel === TOKENS_CHANNEL) store.reread(name).catch(() => undefined);
      });
      // Messages sent while the connection was away are lost: read everything when it is back.
      subscriber.on('ready', () => store.refresh().catch(() => undefined));
      try {
        await subscriber.subscribe(TOKENS_CHANNEL);
      } catch (err) {
        await store.close();
        throw new OperatorError(`redis: cannot subscribe to access-token changes in Redis at ${describeRedis(target)} (${(err as Error).message}); start Redis or correct "redis"`, 1);
      }
      store.timer = setInterval(() => store.refresh().catch(() => undefined), FULL_READ_MS);
      store.timer.unref();
    }
    return store;
  }

  async refresh(): Promise<void> {
    const mine = ++this.generation;
    const stored = await this.redis.hgetall(TOKENS_KEY);
    const next = new Map<string, StoredToken>();
    for (const [name, value] of Object.entries(stored)) {
      const record = this.open(name, value);
      if (record) next.set(name, record);
    }
    if (mine === this.generation) this.tokens = next;
  }

  async create(record: StoredToken): Promise<boolean> {
    const field = record.name;
    const created = await this.redis.hsetnx(TOKENS_KEY, field, this.target.box.seal(`${TOKENS_KEY}/${field}`, JSON.stringify(record)));
    if (created === 0) return false;
    await this.redis.hdel(TOKENS_USED_KEY, field);
    this.changed(field);
    this.tokens.set(field, record);
    await this.redis.publish(TOKENS_CHANNEL, field);
    return true;
  }

  async revoke(name: string): Promise<boolean> {
    const removed = await this.redis.hdel(TOKENS_KEY, name);
    await this.redis.hdel(TOKENS_USED_KEY, name);
    this.tokens.delete(name);
    this.changed(name);
    await this.redis.publish(TOKENS_CHANNEL, name);
    return removed > 0;
  }

  async lastUsed(name: string): Promise<number | null> {
    const value = await this.redis.hget(TOKENS_USED_KEY, name);
    return value === null || !/^\d+$/.test(value) ? null : Number(value);
  }

  protected async writeUsed(name: string, at: number): Promise<void> {
    await this.redis.hset(TOKENS_USED_KEY, name, String(at));
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.subscriber?.disconnect();
    this.redis.disconnect();
  }

  private async reread(name: string): Promise<void> {
    const value = await this.redis.hget(TOKENS_KEY, name);
    const record = value === null ? null : this.open(name, value);
    if (record) this.tokens.set(name, record);
    else this.tokens.delete(name);
  }

  private open(name: string, value: string): StoredToken | null {
    try {
      const record = readRecord(JSON.parse(this.target.box.open(`${TOKENS_KEY}/${name}`, value)));
      if (record && record.name === name) return record;
    } catch (err) {
      this.logger?.warn({ token: name }, `access token "${name}" in Redis is refused: ${(err as Error).message}; revoke it (registry-gate token revoke ${name}) and find out who wrote it`);
      return null;
    }
    this.logger?.warn({ token: name }, `access token "${name}" in Redis cannot be read as a token; it is ignored`);
    return null;
  }
}

export async function openTokenStore(stateDir: string, redis: RedisTarget | null, options: StoreOptions): Promise<TokenStore> {
  return redis ? RedisTokenStore.open(redis, options) : FileTokenStore.open(stateDir, options);
}
