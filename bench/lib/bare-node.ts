/**
 * The least a Node process can do in the proxy's place, to measure the floor under the proxy's
 * figures in the same run:
 *   https CERT KEY PORT            answers every request with {"status":"ok"} (idle connections)
 *   pipe CERT KEY PORT UPSTREAM    terminates TLS and pipes the bytes both ways to host:port, no
 *                                  HTTP, no auth (CPU per GiB moved)
 *   relay CERT KEY PORT UPSTREAM   terminates TLS, reads each request with node:http and sends it on
 *                                  to host:port with http.request, bodies piped both ways: the
 *                                  textbook Node reverse proxy, no auth, no rules (what reading
 *                                  HTTP costs in Node, per GiB moved)
 * Run under tsx; prints "listening" when up.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';

const [mode, certFile, keyFile, port, upstream] = process.argv.slice(2);
if (!certFile || !keyFile || !port || (mode !== 'https' && mode !== 'pipe' && mode !== 'relay') || (mode !== 'https' && !upstream)) {
  throw new Error('usage: bare-node.ts https CERT KEY PORT | pipe CERT KEY PORT HOST:PORT | relay CERT KEY PORT HOST:PORT');
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
} else if (mode === 'relay') {
  const [host, upstreamPort] = upstream!.split(':');
  const agent = new http.Agent({ keepAlive: true });
  https
    .createServer(credentials, (req, res) => {
      const forwarded = http.request({ host, port: Number(upstreamPort), method: req.method, path: req.url, headers: req.headers, agent }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      forwarded.on('error', () => res.destroy());
      req.pipe(forwarded);
    })
    .listen(Number(port), '127.0.0.1', up);
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
