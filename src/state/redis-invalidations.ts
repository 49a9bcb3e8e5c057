import { randomBytes } from 'node:crypto';
import { OperatorError } from '../observe/operator-error.js';
import type { Redis } from 'ioredis';
import { isRepositoryName } from '../registry/scope.js';
import { maskUrlPassword } from '../config/mask.js';
import type { Logger } from '../observe/logger.js';
import { redisClient } from './redis-client.js';

export const INVALIDATION_CHANNEL = 'registry-gate:cache-invalidate';

/**
 * Tells the other replicas sharing a Redis that a repository was written, so that a push through
 * one replica is seen at once through all of them. Best effort by design: while Redis is away a
 * message can be lost, and then the other replicas' answers are at most `cache.ttlSeconds` old —
 * the same bound as without Redis.
 */
export class RedisInvalidations {
  /** Our own messages come back to us; they are told apart by this id. */
  private readonly origin = randomBytes(8).toString('hex');

  private constructor(
    private readonly publisher: Redis,
    private readonly subscriber: Redis,
  ) {}

  static async open(url: string, onRemoteWrite: (repository: string) => void, logger: Logger): Promise<RedisInvalidations> {
    const where = maskUrlPassword(url);
    const connect = (role: string): Redis => {
      const redis = redisClient(url, 1);
      // ioredis reconnects by itself and raises an error on every attempt: say it once per outage.
      let down = false;
      redis.on('error', (err: Error) => {
        if (down) return;
        down = true;
        logger.warn({ redis: where, role, err: { message: err.message } }, 'Redis unreachable: cache invalidations between replicas pause (answers stay at most cache.ttlSeconds old)');
      });
      redis.on('ready', () => {
        if (!down) return;
        down = false;
        logger.info({ redis: where, role }, 'Redis reachable again: cache invalidations between replicas resume');
      });
      return redis;
    };
    const publisher = connect('publish');
    const subscriber = connect('subscribe');
    const fanout = new RedisInvalidations(publisher, subscriber);
    subscriber.on('message', (channel: string, message: string) => {
      if (channel !== INVALIDATION_CHANNEL) return;
      const newline = message.indexOf('\n');
      const repository = message.slice(newline + 1);
      if (newline === -1 || message.slice(0, newline) === fanout.origin || !isRepositoryName(repository)) return;
      onRemoteWrite(repository);
    });
    try {
      await Promise.all([publisher.connect(), subscriber.connect()]);
      await subscriber.subscribe(INVALIDATION_CHANNEL);
    } catch (err) {
      fanout.close();
      throw new OperatorError(`redis: cannot subscribe to cache invalidations in Redis at ${where} (${(err as Error).message}); start Redis or correct "redis"`, 1);
    }
    return fanout;
  }

  publish(repository: string): void {
    // A lost message only lets other replicas serve answers up to cache.ttlSeconds old (class comment).
    this.publisher.publish(INVALIDATION_CHANNEL, `${this.origin}\n${repository}`).catch(() => {});
  }

  close(): void {
    this.publisher.disconnect();
    this.subscriber.disconnect();
  }
}
