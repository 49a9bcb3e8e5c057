import { Redis } from 'ioredis';

/**
 * How every Redis connection of the proxy behaves: connected explicitly (start-up fails with the
 * caller's message instead of retrying in the background), at most 5 s per connection attempt, and
 * commands fail at once while disconnected instead of queueing without bound.
 */
export function redisClient(url: string, maxRetriesPerRequest: number): Redis {
  return new Redis(url, { lazyConnect: true, connectTimeout: 5000, enableOfflineQueue: false, maxRetriesPerRequest });
}
