import { OperatorError } from '../observe/operator-error.js';
import { describeRedis, redisClient, type RedisTarget } from './redis-client.js';
import { keyFromBase64, newSecret, type KeyStore, type SigningKey } from './signing-key.js';

export const REDIS_KEY = 'registry-gate:token-signing-key';

/**
 * The signing key shared by replicas that do not share a disk. SET NX makes the first replica's
 * key the key: every later one (and every restart) reads it back, so tokens issued anywhere are
 * accepted everywhere. The key has no expiry; deleting it logs every client out once. It is
 * stored sealed (state/secret-box.ts): a key planted in Redis is refused, never adopted.
 */
export class RedisKeyStore implements KeyStore {
  constructor(private readonly target: RedisTarget) {}

  async load(): Promise<SigningKey> {
    const redis = redisClient(this.target, 2);
    // ioredis reports the cause (refused, a certificate it does not trust) only as an event; the
    // command then fails with "Connection is closed".
    let cause: Error | null = null;
    redis.on('error', (err: Error) => (cause ??= err));
    try {
      await redis.connect();
      await redis.set(REDIS_KEY, this.target.box.seal(REDIS_KEY, newSecret().toString('base64')), 'NX');
      const stored = (await redis.get(REDIS_KEY)) ?? '';
      try {
        return keyFromBase64(this.target.box.open(REDIS_KEY, stored));
      } catch (err) {
        throw new OperatorError(
          `Redis key ${REDIS_KEY} is refused: ${(err as Error).message}; if every replica has the same redisOptions.secretKey(File), delete it (redis-cli DEL ${REDIS_KEY}: replicas then agree on a new key and clients log in again) and find out who wrote it`,
          1,
        );
      }
    } catch (err) {
      if (err instanceof OperatorError) throw err;
      throw new OperatorError(
        `redis: cannot load the token signing key from Redis at ${describeRedis(this.target)} (${(cause ?? (err as Error)).message}); start Redis or correct "redis" (host, port, password), or set it to null to keep the key in stateDir`,
        1,
      );
    } finally {
      redis.disconnect();
    }
  }
}
