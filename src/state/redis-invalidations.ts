import { randomBytes } from 'node:crypto';
import { OperatorError } from '../observe/operator-error.js';
import type { Redis } from 'ioredis';
import { isRepositoryName } from '../registry/scope.js';
import type { Logger } from '../observe/logger.js';
import { connectAtStart, describeRedis, redisClient, type RedisHealth, type RedisTarget } from './redis-client.js';

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

  /**
   * `shared(false)` when either connection goes away: other replicas' writes may then go unheard,
   * so the caller stops answering from its cache until `shared(true)`.
   */
  static async open(
    target: RedisTarget,
    onRemoteWrite: (repository: string) => void,
    deps: { logger: Logger; health: RedisHealth; shared(up: boolean): void },
  ): Promise<RedisInvalidations> {
    const where = describeRedis(target);
    const effect = {
      away: 'cache invalidations between replicas pause, and the response cache is off until Redis is back',
      back: 'cache invalidations between replicas resume, and the response cache is on again',
    };
    const away = new Set<string>();
    const connect = (role: string): Redis =>
      deps.health.watch(redisClient(target, 1), role, effect, deps.logger, target, (up) => {
        const before = away.size;
        if (up) away.delete(role);
        else away.add(role);
        if ((before === 0) !== (away.size === 0)) deps.shared(away.size === 0);
      });
    const publisher = connect('cache invalidations (publish)');
    const subscriber = connect('cache invalidations (subscribe)');
    const fanout = new RedisInvalidations(publisher, subscriber);
    subscriber.on('message', (channel: string, message: string) => {
      if (channel !== INVALIDATION_CHANNEL) return;
      const newline = message.indexOf('\n');
      const repository = message.slice(newline + 1);
      if (newline === -1 || message.slice(0, newline) === fanout.origin || !isRepositoryName(repository)) return;
      onRemoteWrite(repository);
    });
    await connectAtStart([publisher, subscriber], target, 'cache invalidations');
    try {
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
