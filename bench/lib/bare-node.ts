/**
 * The least a Node process can do in the proxy's place, to measure the floor under the proxy's
 * figures in the same run:
 *   https CERT KEY PORT            answers every request with {"status":"ok"} (idle connections)
 *   pipe CERT KEY PORT UPSTREAM    terminates TLS and pipes the bytes both ways to host:port, no
 *                                  HTTP, no auth (CPU per GiB moved)
 * Run under tsx; prints "listening" when up.
 */
import { readFileSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';

const [mode, certFile, keyFile, port, upstream] = process.argv.slice(2);
if (!certFile || !keyFile || !port || (mode !== 'https' && mode !== 'pipe') || (mode === 'pipe' && !upstream)) {
  throw new Error('usage: bare-node.ts https CERT KEY PORT | pipe CERT KEY PORT HOST:PORT');
}
const credentials = { cert: readFileSync(certFile), key: readFileSync(keyFile) };
const up = (): void => void process.stdout.write('listening\n');

if (mode === 'https') {
  const server = https.createServer(credentials, (_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end('{"status":"ok"}');
  });
  // As the proxy: an idle keep-alive connection stays for 75 s.
  server.keepAliveTimeout = 75_000;
  server.listen(Number(port), '127.0.0.1', up);
} else {
  const [host, upstreamPort] = upstream!.split(':');
  tls
    .createServer(credentials, (client) => {
      const registry = net.connect(Number(upstreamPort), host);
      client.pipe(registry).on('error', () => client.destroy());
      registry.pipe(client).on('error', () => registry.destroy());
      client.on('error', () => registry.destroy());
      registry.on('error', () => client.destroy());
    })
    .listen(Number(port), '127.0.0.1', up);
}
