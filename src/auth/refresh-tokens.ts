/**
 * Refresh tokens: what `docker login` keeps instead of the password (its "identity token").
 *
 * docker asks the token service with `offline_token=true`; an answer with a `refresh_token` makes
 * it store that in its config, drop the password, and later fetch registry tokens with
 * `grant_type=refresh_token`. So a CI job that logged in with a 5-minute ID token can still push
 * an hour later, and a person's password is not left on disk.
 *
 * A refresh token is bound to the identity it was handed to (source, subject, access token, the
 * stamp of the password, an ID token's claims) and, on every use, that identity is asked for again
 * (auth/identify.ts `renew`): a user removed, a password changed, an access token revoked, a
 * claim condition no longer met — and it is refused. It expires after `auth.refreshTokenDays`, for
 * an OIDC login after the source's `maxJobMinutes`.
 *
 * Only a SHA-256 of the secret is stored (32 random bytes: nothing to guess offline), in
 * `stateDir/refresh-tokens/` or, with `redis`, in Redis with the same expiry, so every replica
 * honours it. The prefix `rgr_` lets secret scanners find leaked ones.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdir, readdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Redis } from 'ioredis';
import type { Claims } from '../access/claims.js';
import type { Logger } from '../observe/logger.js';
import { connectAtStart, redisClient, type RedisHealth, type RedisTarget } from '../state/redis-client.js';
import type { Identity } from './sources/source.js';

const PREFIX = 'rgr_';
const SECRET = /^rgr_[A-Za-z0-9_-]{43}$/;
const DAY_MS = 86_400_000;
const SWEEP_MS = 3_600_000;

/** Who a refresh token stands for: what `Identifier.renew` asks the source about again. */
export interface HeldIdentity {
  source: string;
  subject: string;
  /** The access token the login was made with. */
  token: string | null;
  stamp: string | null;
  /** An OIDC login: the ID token's claims (its conditions are checked again on every use). */
  claims: Claims | null;
}

export interface RefreshRecord extends HeldIdentity {
  /** base64url SHA-256 of the secret. */
  hash: string;
  created: string;
  expires: string;
}

export interface RefreshStore {
  put(record: RefreshRecord): Promise<void>;
  get(hash: string): Promise<RefreshRecord | null>;
  close(): Promise<void>;
}

export type Redeemed = { ok: true; held: HeldIdentity; expires: string } | { ok: false; message: string };

export class RefreshTokens {
  constructor(
    private readonly store: RefreshStore,
    private readonly days: number,
    /** How long one source's logins may be refreshed at most, in seconds (an OIDC source's job length); null: `days`. */
    private readonly sourceLimit: (source: string) => number | null,
    private readonly now: () => number = Date.now,
  ) {}

  /** A new refresh token for this identity; its secret, shown to the client once. */
  async issue(identity: Identity): Promise<string> {
    const secret = PREFIX + randomBytes(32).toString('base64url');
    const now = this.now();
    const limit = this.sourceLimit(identity.source);
    const lifetime = Math.min(this.days * DAY_MS, limit === null ? Infinity : limit * 1000);
    await this.store.put({
      hash: hashOf(secret),
      source: identity.source,
      subject: identity.subject,
      token: identity.token?.name ?? null,
      stamp: identity.stamp,
      claims: identity.claims ?? null,
      created: new Date(now).toISOString(),
      expires: new Date(now + lifetime).toISOString(),
    });
    return secret;
  }

  async redeem(secret: string): Promise<Redeemed> {
    if (!SECRET.test(secret)) return { ok: false, message: 'not a refresh token of this registry; log in again' };
    const hash = hashOf(secret);
    const record = await this.store.get(hash);
    if (!record || !sameHash(record.hash, hash)) return { ok: false, message: 'unknown or expired refresh token; log in again' };
    if (Date.parse(record.expires) <= this.now()) return { ok: false, message: `refresh token expired at ${record.expires}; log in again` };
    const { source, subject, token, stamp, claims } = record;
    return { ok: true, held: { source, subject, token, stamp, claims }, expires: record.expires };
  }

  close(): Promise<void> {
    return this.store.close();
  }
}

function hashOf(secret: string): string {
  return createHash('sha256').update(secret).digest('base64url');
}

function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function readRecord(value: unknown): RefreshRecord | null {
  if (typeof value !== 'object' || value === null) return null;
  const r = value as Record<string, unknown>;
  const text = (v: unknown): v is string => typeof v === 'string';
  const textOrNull = (v: unknown): v is string | null => v === null || typeof v === 'string';
  if (!text(r.hash) || !text(r.source) || !text(r.subject) || !textOrNull(r.token) || !textOrNull(r.stamp) || !text(r.created) || !text(r.expires)) return null;
  if (Number.isNaN(Date.parse(r.expires))) return null;
  const claims = r.claims;
  if (claims !== null && (typeof claims !== 'object' || Array.isArray(claims))) return null;
  return { hash: r.hash, source: r.source, subject: r.subject, token: r.token, stamp: r.stamp, claims: claims as Claims | null, created: r.created, expires: r.expires };
}

/** One file per refresh token, named by its hash; expired ones are removed by an hourly sweep. */
export class FileRefreshStore implements RefreshStore {
  private lastSweep = 0;

  private constructor(private readonly dir: string) {}

  static async open(stateDir: string): Promise<FileRefreshStore> {
    const dir = path.join(stateDir, 'refresh-tokens');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return new FileRefreshStore(dir);
  }

  async put(record: RefreshRecord): Promise<void> {
    const temp = path.join(this.dir, `.${record.hash}.tmp`);
    await writeFile(temp, JSON.stringify(record), { mode: 0o600 });
    await rename(temp, this.fileOf(record.hash));
    if (Date.now() - this.lastSweep > SWEEP_MS) {
      this.lastSweep = Date.now();
      this.sweep().catch(() => undefined);
    }
  }

  async get(hash: string): Promise<RefreshRecord | null> {
    const text = await readFile(this.fileOf(hash), 'utf8').catch(() => null);
    if (text === null) return null;
    let record: RefreshRecord | null;
    try {
      record = readRecord(JSON.parse(text));
    } catch {
      record = null;
    }
    return record;
  }

  async close(): Promise<void> {}

  private fileOf(hash: string): string {
    return path.join(this.dir, `${hash}.json`);
  }

  /** Expired records stay until here, so a client still holding one is told it expired, not that it is unknown. */
  private async sweep(): Promise<void> {
    for (const file of await readdir(this.dir)) {
      if (!file.endsWith('.json')) continue;
      const record = await this.get(file.slice(0, -'.json'.length));
      if (record && Date.parse(record.expires) <= Date.now()) await unlink(path.join(this.dir, file)).catch(() => undefined);
    }
  }
}

export const REFRESH_KEY_PREFIX = 'registry-gate:refresh:';

/** In Redis for every replica, sealed under its key (a record cannot be planted or moved), expiring with the token. */
export class RedisRefreshStore implements RefreshStore {
  private constructor(
    private readonly target: RedisTarget,
    private readonly redis: Redis,
  ) {}

  static async open(target: RedisTarget, health: RedisHealth | null, logger: Logger): Promise<RedisRefreshStore> {
    const client = redisClient(target, 1);
    const watched = health
      ? health.watch(client, 'refresh tokens', { away: 'docker logins cannot get or use refresh tokens (docker keeps the password then); registry tokens are still issued', back: 'refresh tokens work again' }, logger, target)
      : client;
    await connectAtStart([watched], target, 'refresh tokens');
    return new RedisRefreshStore(target, watched);
  }

  async put(record: RefreshRecord): Promise<void> {
    const key = REFRESH_KEY_PREFIX + record.hash;
    const ttl = Math.max(1, Date.parse(record.expires) - Date.now());
    await this.redis.set(key, this.target.box.seal(key, JSON.stringify(record)), 'PX', ttl);
  }

  async get(hash: string): Promise<RefreshRecord | null> {
    const key = REFRESH_KEY_PREFIX + hash;
    const value = await this.redis.get(key);
    if (value === null) return null;
    try {
      return readRecord(JSON.parse(this.target.box.open(key, value)));
    } catch {
      return null;
    }
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}
