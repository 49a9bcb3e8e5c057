import { readFile } from 'node:fs/promises';
import type { Redis, RedisOptions } from 'ioredis';
import { maskUrlPassword } from '../config/mask.js';
import type { Config } from '../config/types.js';
import type { Logger } from '../observe/logger.js';
import { OperatorError } from '../observe/operator-error.js';
import { SecretBox } from './secret-box.js';

/** Where the replicas' Redis is: a URL, or a master name found through Sentinels; TLS with rediss://. */
export interface RedisTarget {
  url: string;
  sentinels: Array<{ host: string; port: number }>;
  sentinelPassword: string | null;
  /** redisOptions.caFile's contents: the CA for rediss:// (else the system's). */
  caPem: string | null;
  /** Seals what the gate keeps in Redis (redisOptions.secretKeyFile or secretKey). */
  box: SecretBox;
  /**
   * ioredis, loaded only when `redis` is set: it adds ~20 MiB to the resident memory of every
   * proxy, with or without replicas.
   */
  Client: typeof Redis;
}

/** Null without `redis`; reads redisOptions.caFile and the secret key. */
export async function redisTarget(config: Pick<Config, 'redis' | 'redisOptions'>): Promise<RedisTarget | null> {
  if (config.redis === null) return null;
  const { sentinels, sentinelPassword, caFile, secretKeyFile, secretKey } = config.redisOptions;
  const caPem = caFile === null ? null : await readFile(caFile, 'utf8').catch((err: Error) => Promise.reject(new OperatorError(`redisOptions.caFile: cannot read ${caFile} (${err.message})`)));
  const material: string =
    secretKey ??
    (await readFile(secretKeyFile!, 'utf8').catch((err: Error) => Promise.reject(new OperatorError(`redisOptions.secretKeyFile: cannot read ${secretKeyFile} (${err.message})`))));
  let box: SecretBox;
  try {
    box = new SecretBox(material.trim());
  } catch (err) {
    throw new OperatorError(`redisOptions.${secretKey !== null ? 'secretKey' : `secretKeyFile (${secretKeyFile})`}: ${(err as Error).message}; create one with \`openssl rand -base64 32\``);
  }
  const { Redis: Client } = await import('ioredis');
  return {
    box,
    Client,
    url: config.redis,
    sentinels: sentinels.map((s) => {
      const colon = s.lastIndexOf(':');
      return { host: s.slice(0, colon).replace(/^\[|\]$/g, ''), port: Number(s.slice(colon + 1)) };
    }),
    sentinelPassword,
    caPem,
  };
}

/** For logs and messages: the URL without its password, and the Sentinels when there are. */
export function describeRedis(target: RedisTarget): string {
  const url = maskUrlPassword(target.url);
  return target.sentinels.length ? `${url} (master "${new URL(target.url).hostname}" through Sentinels ${target.sentinels.map((s) => `${s.host}:${s.port}`).join(', ')})` : url;
}

/**
 * How every Redis connection of the proxy behaves: connected explicitly (start-up fails with the
 * caller's message instead of retrying in the background), at most 5 s per connection attempt, and
 * commands fail at once while disconnected instead of queueing without bound. Through Sentinels,
 * ioredis asks them for the master and follows a failover by itself.
 */
export function redisClient(target: RedisTarget, maxRetriesPerRequest: number): Redis {
  const common: RedisOptions = { lazyConnect: true, connectTimeout: 5000, enableOfflineQueue: false, maxRetriesPerRequest };
  const tls = target.url.startsWith('rediss:') ? { tls: target.caPem ? { ca: target.caPem } : {} } : {};
  if (target.sentinels.length === 0) return new target.Client(target.url, { ...common, ...tls });
  const url = new URL(target.url);
  return new target.Client({
    ...common,
    ...tls,
    sentinels: target.sentinels,
    name: url.hostname,
    ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
    db: Number(url.pathname.slice(1) || '0'),
    ...(target.sentinelPassword ? { sentinelPassword: target.sentinelPassword } : {}),
  });
}

/**
 * Connects `clients` at start, or throws the one line that stops the start. ioredis reports why
 * a connection failed (refused, a certificate it does not trust) only as an 'error' event and
 * rejects with "Connection is closed", so the first such event is the cause named. On failure
 * every client is disconnected (ioredis would otherwise go on reconnecting).
 */
export async function connectAtStart(clients: Redis[], target: RedisTarget, purpose: string): Promise<void> {
  let cause: Error | null = null;
  const note = (err: Error): void => {
    cause ??= err;
  };
  for (const client of clients) client.on('error', note);
  try {
    await Promise.all(clients.map((client) => client.connect()));
  } catch (err) {
    for (const client of clients) client.disconnect();
    throw new OperatorError(`redis: cannot reach Redis at ${describeRedis(target)} for ${purpose} (${(cause ?? (err as Error)).message}); start Redis or correct "redis"`, 1);
  } finally {
    for (const client of clients) client.off('error', note);
  }
}

/**
 * Which Redis connections are away right now. Redis going away is not an outage: each part keeps
 * serving with what it holds, and /readyz says "degraded" (still 200) until every connection is
 * back.
 */
export class RedisHealth {
  private readonly away = new Map<string, string>();

  /** One reason per connection that is away, for /readyz. */
  reasons(): string[] {
    return [...this.away].map(([role, why]) => `Redis unreachable for ${role} (${why})`);
  }

  /**
   * Follows one connection: logs once when it goes away (ioredis reconnects by itself and raises
   * an error on every attempt) and once when it is back, with what that means for this part.
   */
  watch(redis: Redis, role: string, effect: { away: string; back: string }, logger: Logger, target: RedisTarget, onChange?: (up: boolean) => void): Redis {
    const where = describeRedis(target);
    redis.on('error', (err: Error) => {
      if (this.away.has(role)) return;
      this.away.set(role, err.message);
      logger.warn({ redis: where, role, err: { message: err.message } }, `Redis unreachable: ${effect.away}`);
      onChange?.(false);
    });
    redis.on('ready', () => {
      if (!this.away.delete(role)) return;
      logger.info({ redis: where, role }, `Redis reachable again: ${effect.back}`);
      onChange?.(true);
    });
    return redis;
  }
}
