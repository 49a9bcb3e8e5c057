import path from 'node:path';
import type { Config } from '../../src/config/types.js';
import { writeHtpasswd } from './htpasswd.js';
import { disposeProxyConfig, proxyConfig, startProxy, type DeepPartial, type ProxyConfigFile, type RunningProxy } from './proxy.js';
import { startRedis, type RedisServer } from './redis.js';
import { startRegistry, type Registry } from './registry.js';
import { makeTempDir, removeTempDir } from './tmp.js';

/** Replicas of the gate sharing one Redis and one registry, each with a config and stateDir of its own. */
export interface Fleet {
  redis: RedisServer;
  registry: Registry;
  work: string;
  htpasswdFile: string;
  replicas: RunningProxy[];
  /** Every config made for the fleet; a test adds the ones it makes, and stop() disposes of them all. */
  configs: ProxyConfigFile[];
  stop(): Promise<void>;
}

export async function startFleet(opts: {
  name: string;
  users: Record<string, string>;
  replicas: number;
  config: (shared: { redis: string; upstream: string; htpasswdFile: string }) => DeepPartial<Config> & { upstream: string };
}): Promise<Fleet> {
  const work = await makeTempDir(opts.name);
  const htpasswdFile = path.join(work, 'htpasswd');
  await writeHtpasswd(htpasswdFile, opts.users);
  const [redis, registry] = await Promise.all([startRedis(), startRegistry()]);
  const fleet: Fleet = {
    redis,
    registry,
    work,
    htpasswdFile,
    replicas: [],
    configs: [],
    async stop() {
      for (const r of fleet.replicas) await r.stop();
      for (const c of fleet.configs) await disposeProxyConfig(c);
      await redis.stop();
      await registry.stop();
      await removeTempDir(work);
    },
  };
  for (let i = 0; i < opts.replicas; i++) {
    const config = await proxyConfig(opts.config({ redis: redis.url, upstream: registry.url, htpasswdFile }));
    fleet.configs.push(config);
    fleet.replicas.push(await startProxy(config));
  }
  return fleet;
}
