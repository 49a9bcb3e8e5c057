import { Redis } from 'ioredis';
import { maskUrlPassword } from '../config/mask.js';
import type { Logger } from '../observe/logger.js';

/**
 * How every Redis connection of the proxy behaves: connected explicitly (start-up fails with the
 * caller's message instead of retrying in the background), at most 5 s per connection attempt, and
 * commands fail at once while disconnected instead of queueing without bound.
 */
export function redisClient(url: string, maxRetriesPerRequest: number): Redis {
  return new Redis(url, { lazyConnect: true, connectTimeout: 5000, enableOfflineQueue: false, maxRetriesPerRequest });
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
  watch(redis: Redis, role: string, effect: { away: string; back: string }, logger: Logger, url: string, onChange?: (up: boolean) => void): Redis {
    const where = maskUrlPassword(url);
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
