import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import https from 'node:https';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import { routeByClientHello } from '../../src/tls/alpn-router.js';
import { createSelfSigned } from '../../src/tls/self-signed.js';

const mainPair = await createSelfSigned(['main.test'], 1);
const challengePair = await createSelfSigned(['registry.test'], 1);

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
}

/** Forwards client bytes one at a time, each in its own write: the worst fragmentation a peer can produce. */
function trickleProxy(target: number): net.Server {
  return net.createServer((client) => {
    const upstream = net.connect(target, '127.0.0.1');
    upstream.setNoDelay(true);
    client.on('data', (chunk: Buffer) => {
      client.pause();
      let i = 0;
      const next = (): void => {
        if (i === chunk.length) {
          client.resume();
          return;
        }
        upstream.write(chunk.subarray(i, ++i), () => setImmediate(next));
      };
      next();
    });
    upstream.pipe(client);
    const close = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
  });
}

function get(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = https.get(
      { host: '127.0.0.1', port, servername: 'main.test', ca: mainPair.certPem, path: '/hello', agent: false },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve(body));
      },
    );
    req.on('error', reject);
  });
}

function alpnHandshake(port: number): Promise<{ protocol: string | false | null; subject: string }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      servername: 'registry.test',
      ALPNProtocols: ['acme-tls/1'],
      rejectUnauthorized: false,
    });
    socket.on('secureConnect', () => {
      const cert = socket.getPeerX509Certificate() as X509Certificate;
      resolve({ protocol: socket.alpnProtocol, subject: cert.subject });
      socket.destroy();
    });
    socket.on('error', reject);
  });
}

/** Resolves with what the server sent before closing. */
function sendRaw(port: number, data: Buffer | null): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      if (data) socket.write(data);
    });
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('close', () => resolve(Buffer.concat(chunks)));
    socket.on('error', reject);
  });
}

describe('routeByClientHello', () => {
  const main = https.createServer({ cert: mainPair.certPem, key: mainPair.keyPem }, (req, res) => res.end(`main ${req.url}`));
  const challenge = tls.createServer(
    { cert: challengePair.certPem, key: challengePair.keyPem, ALPNProtocols: ['acme-tls/1'] },
    (socket) => socket.end(),
  );
  const seen: string[][] = [];
  const proxy = { server: null as net.Server | null, port: 0 };
  let port = 0;

  before(async () => {
    routeByClientHello(
      main,
      (hello) => {
        seen.push(hello.alpn);
        return hello.alpn.includes('acme-tls/1') ? challenge : null;
      },
      300,
    );
    port = await listen(main);
    proxy.server = trickleProxy(port);
    proxy.port = await listen(proxy.server);
  });

  after(() => {
    main.close();
    main.closeAllConnections();
    proxy.server?.close();
  });

  it('hands ordinary connections to the HTTPS server', async () => {
    assert.equal(await get(port), 'main /hello');
  });

  it('hands acme-tls/1 connections to the challenge server', async () => {
    const { protocol, subject } = await alpnHandshake(port);
    assert.equal(protocol, 'acme-tls/1');
    assert.match(subject, /^CN=registry\.test\n/);
  });

  it('works when the ClientHello arrives one byte per segment', async () => {
    const before = seen.length;
    assert.equal(await get(proxy.port), 'main /hello');
    assert.equal((await alpnHandshake(proxy.port)).protocol, 'acme-tls/1');
    assert.equal(seen.length, before + 2);
  });

  it('closes connections that do not start with a TLS handshake', async () => {
    assert.equal((await sendRaw(port, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'))).length, 0);
  });

  it('closes connections that send no ClientHello in time', async () => {
    const started = Date.now();
    assert.equal((await sendRaw(port, null)).length, 0);
    assert.ok(Date.now() - started >= 250, 'closed by the peek timeout');
  });

  it('closes connections that stop mid-ClientHello', async () => {
    assert.equal((await sendRaw(port, Buffer.from([22, 3, 1, 0, 200, 1, 0]))).length, 0);
  });
});
