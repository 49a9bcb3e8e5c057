import { freePort } from './ports.js';
import { spawnLong, waitUntil, type LongProcess } from './process.js';
import { makeTempDir, removeTempDir } from './tmp.js';
import { run } from './process.js';

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

/** The real redis-server on a free loopback port, no persistence, in a temp dir. */
export async function startRedis(): Promise<RedisServer> {
  const dir = await makeTempDir('redis');
  const port = await freePort();
  const launch = async (): Promise<LongProcess> => {
    const started = spawnLong('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { name: 'redis-server' });
    await waitUntil(async () => (await run('redis-cli', ['-p', String(port), 'ping'], { timeoutMs: 2000 })).stdout.trim() === 'PONG', {
      timeoutMs: 10_000,
      what: 'redis-server to answer PING',
      proc: started,
    });
    return started;
  };
  let proc = await launch();
  return {
    url: `redis://127.0.0.1:${port}/0`,
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
