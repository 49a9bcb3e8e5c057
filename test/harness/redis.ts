import { freePort } from './ports.js';
import { spawnLong, waitUntil, type LongProcess } from './process.js';
import { makeTempDir, removeTempDir } from './tmp.js';
import { run } from './process.js';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';

export interface RedisServer {
  url: string;
  port: number;
  /** The running redis-server (another one after start() following kill()). */
  readonly process: LongProcess;
  /** SIGKILL: Redis vanishes as in a crash. */
  kill(): Promise<void>;
  /** Start again on the same port (empty: no persistence). */
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface RedisOptions {
  /** TLS only (rediss://), with this certificate; clients are not asked for one. */
  tls?: { certFile: string; keyFile: string; caFile: string };
  /** A replica of the Redis on this port. */
  replicaOf?: number;
}

/** The real redis-server on a free loopback port, no persistence, in a temp dir. */
export async function startRedis(opts: RedisOptions = {}): Promise<RedisServer> {
  const dir = await makeTempDir('redis');
  const port = await freePort();
  const listen = opts.tls
    ? ['--port', '0', '--tls-port', String(port), '--tls-cert-file', opts.tls.certFile, '--tls-key-file', opts.tls.keyFile, '--tls-ca-cert-file', opts.tls.caFile, '--tls-auth-clients', 'no']
    : ['--port', String(port)];
  const cli = opts.tls ? ['--tls', '--cacert', opts.tls.caFile, '-p', String(port)] : ['-p', String(port)];
  const launch = async (): Promise<LongProcess> => {
    const args = [...listen, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...(opts.replicaOf ? ['--replicaof', '127.0.0.1', String(opts.replicaOf)] : [])];
    const started = spawnLong('redis-server', args, { name: 'redis-server' });
    await waitUntil(async () => (await run('redis-cli', [...cli, 'ping'], { timeoutMs: 2000 })).stdout.trim() === 'PONG', {
      timeoutMs: 10_000,
      what: 'redis-server to answer PING',
      proc: started,
    });
    return started;
  };
  let proc = await launch();
  return {
    url: `${opts.tls ? 'rediss' : 'redis'}://127.0.0.1:${port}/0`,
    port,
    get process() {
      return proc;
    },
    async kill() {
      await proc.stop({ signal: 'SIGKILL' });
    },
    async start() {
      proc = await launch();
    },
    async stop() {
      await proc.stop({ graceMs: 2000 });
      await removeTempDir(dir);
    },
  };
}

export interface RedisSentinel {
  /** "127.0.0.1:port", for redisOptions.sentinels. */
  address: string;
  /** The port of the master the Sentinel names now. */
  master(): Promise<number>;
  /** SENTINEL FAILOVER: the replica becomes the master. */
  failover(): Promise<void>;
  stop(): Promise<void>;
}

/** A Sentinel (Debian's redis-sentinel) watching `master` as "mymaster", quorum 1, quick to act. */
export async function startSentinel(master: RedisServer, name = 'mymaster'): Promise<RedisSentinel> {
  const dir = await makeTempDir('sentinel');
  const port = await freePort();
  const config = path.join(dir, 'sentinel.conf');
  await writeFile(
    config,
    [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      `sentinel monitor ${name} 127.0.0.1 ${master.port} 1`,
      `sentinel down-after-milliseconds ${name} 1000`,
      `sentinel failover-timeout ${name} 10000`,
      `sentinel parallel-syncs ${name} 1`,
      '',
    ].join('\n'),
  );
  const proc = spawnLong('redis-sentinel', [config], { name: 'redis-sentinel' });
  const ask = async (...args: string[]) => (await run('redis-cli', ['-p', String(port), ...args], { timeoutMs: 5000 })).stdout.trim();
  const masterPort = async () => Number((await ask('SENTINEL', 'get-master-addr-by-name', name)).split('\n')[1]);
  await waitUntil(async () => (await masterPort()) === master.port, { timeoutMs: 10_000, what: 'redis-sentinel to know its master', proc });
  // A failover needs a replica the Sentinel has discovered.
  await waitUntil(async () => (await ask('SENTINEL', 'replicas', name)).length > 0, {
    timeoutMs: 15_000,
    what: 'redis-sentinel to find the replica',
    proc,
  });
  return {
    address: `127.0.0.1:${port}`,
    master: masterPort,
    async failover() {
      const before = await masterPort();
      const answer = await ask('SENTINEL', 'failover', name);
      if (answer !== 'OK') throw new Error(`SENTINEL FAILOVER answered ${answer}`);
      await waitUntil(async () => (await masterPort()) !== before, { timeoutMs: 20_000, what: 'the failover', proc });
    },
    async stop() {
      await proc.stop({ graceMs: 2000 });
      await removeTempDir(dir);
    },
  };
}
