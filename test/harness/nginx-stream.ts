/**
 * Debian's nginx as a TCP load balancer (the `stream` module, libnginx-mod-stream) in front of
 * proxy replicas, with the settings docs/deployment.md gives for it: a connection a dead replica
 * refuses goes to the next one, and a replica that refused one is left alone for 5 s.
 */
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { spawnLong, waitUntil, type LongProcess } from './process.js';
import { makeTempDir, removeTempDir } from './tmp.js';

export const NGINX_STREAM_MODULE = '/usr/lib/nginx/modules/ngx_stream_module.so';

export interface NginxStream {
  process: LongProcess;
  stop(): Promise<void>;
}

export async function startNginxStream(port: number, servers: number[]): Promise<NginxStream> {
  const dir = await makeTempDir('nginx-stream');
  const config = [
    `load_module ${NGINX_STREAM_MODULE};`,
    'daemon off;',
    'worker_processes 1;',
    `pid ${path.join(dir, 'nginx.pid')};`,
    `error_log ${path.join(dir, 'error.log')} warn;`,
    'events { worker_connections 4096; }',
    'stream {',
    '  upstream gates {',
    ...servers.map((p) => `    server 127.0.0.1:${p} max_fails=1 fail_timeout=5s;`),
    '  }',
    '  server {',
    `    listen 127.0.0.1:${port};`,
    '    proxy_pass gates;',
    '    proxy_connect_timeout 2s;',
    '    proxy_next_upstream on;',
    '    proxy_timeout 15m;',
    '  }',
    '}',
  ].join('\n');
  const file = path.join(dir, 'nginx.conf');
  await writeFile(file, `${config}\n`);
  const proc = spawnLong('nginx', ['-c', file, '-e', path.join(dir, 'error.log')], { name: 'nginx stream' });
  await waitUntil(
    () =>
      new Promise<boolean>((resolve) => {
        const socket = net.connect(port, '127.0.0.1', () => {
          socket.destroy();
          resolve(true);
        });
        socket.on('error', () => resolve(false));
      }),
    { timeoutMs: 10_000, what: `nginx stream listening on ${port}`, proc },
  );
  return {
    process: proc,
    async stop() {
      await proc.stop();
      await removeTempDir(dir);
    },
  };
}
