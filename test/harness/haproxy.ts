/**
 * Debian's HAProxy as the load balancer in front of proxy replicas, in TCP mode so that the
 * replicas terminate TLS themselves (and answer TLS-ALPN-01). Each frontend spreads new
 * connections over its servers round-robin; `first` sends every connection to the first server
 * that is up, for tests that must know where a connection lands.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import net from 'node:net';
import { spawnLong, waitUntil, type LongProcess } from './process.js';
import { makeTempDir, removeTempDir } from './tmp.js';

export interface Frontend {
  name: string;
  port: number;
  servers: Array<{ name: string; port: number }>;
  balance?: 'roundrobin' | 'first';
}

export interface HaProxy {
  process: LongProcess;
  stop(): Promise<void>;
}

export async function startHaProxy(frontends: Frontend[]): Promise<HaProxy> {
  const dir = await makeTempDir('haproxy');
  const lines = [
    'global',
    '  maxconn 4096',
    'defaults',
    '  mode tcp',
    '  timeout connect 2s',
    '  timeout client 15m',
    '  timeout server 15m',
    // A replica that is down is noticed at once by the connection that fails, then by the checks.
    '  option redispatch',
    '  retries 2',
  ];
  for (const f of frontends) {
    lines.push(`frontend ${f.name}`, `  bind 127.0.0.1:${f.port}`, `  default_backend ${f.name}-servers`);
    lines.push(`backend ${f.name}-servers`, `  balance ${f.balance ?? 'roundrobin'}`);
    for (const s of f.servers) lines.push(`  server ${s.name} 127.0.0.1:${s.port} check inter 500 fall 1 rise 1`);
  }
  const config = path.join(dir, 'haproxy.cfg');
  await writeFile(config, `${lines.join('\n')}\n`);
  const proc = spawnLong('haproxy', ['-db', '-f', config], { name: 'haproxy' });
  for (const f of frontends) {
    await waitUntil(
      () =>
        new Promise<boolean>((resolve) => {
          const socket = net.connect(f.port, '127.0.0.1', () => {
            socket.destroy();
            resolve(true);
          });
          socket.on('error', () => resolve(false));
        }),
      { timeoutMs: 10_000, what: `haproxy listening on ${f.port}`, proc },
    );
  }
  return {
    process: proc,
    async stop() {
      await proc.stop();
      await removeTempDir(dir);
    },
  };
}
