/**
 * Raw bytes on the main listener: request smuggling shapes, malformed framing and oversized
 * headers get an error and a closed connection, and nothing smuggled reaches the registry.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startEchoUpstream, type EchoUpstream } from '../harness/echo-upstream.js';
import { disposeProxyConfig, proxyConfig, startProxy, type ProxyConfigFile, type RunningProxy } from '../harness/proxy.js';

/** Sends `bytes`, collects everything until the proxy closes (or `ms` pass), returns it as text. */
function exchange(port: number, bytes: string, ms = 3000): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed: false });
    }, ms);
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed: true });
    });
    socket.write(bytes, 'latin1');
  });
}

const statuses = (text: string) => [...text.matchAll(/^HTTP\/1\.1 (\d{3})/gm)].map((m) => Number(m[1]));

describe('hostile input on the wire', () => {
  let upstream: EchoUpstream;
  let config: ProxyConfigFile;
  let proxy: RunningProxy;

  before(async () => {
    upstream = await startEchoUpstream();
    config = await proxyConfig({ upstream: upstream.url });
    proxy = await startProxy(config);
  });

  after(async () => {
    await proxy?.stop();
    await upstream?.stop();
    if (config) await disposeProxyConfig(config);
  });

  const smuggled = 'GET /v2/smuggled/manifests/x HTTP/1.1\r\nHost: a\r\n\r\n';
  const cases: [string, string, number][] = [
    ['Content-Length and Transfer-Encoding together', `POST /v2/a/blobs/uploads/ HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${smuggled}`, 400],
    ['two different Content-Lengths', `POST /v2/a/blobs/uploads/ HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 50\r\n\r\n${smuggled}`, 400],
    ['Transfer-Encoding: gzip, chunked', `PATCH /v2/a/blobs/uploads/u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n${smuggled}`, 400],
    ['Transfer-Encoding: chunked, identity', `PATCH /v2/a/blobs/uploads/u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n${smuggled}`, 400],
    ['a header folded over two lines (obs-fold)', `GET /v2/ HTTP/1.1\r\nHost: a\r\nX-Folded: one\r\n two\r\n\r\n${smuggled}`, 400],
    ['bare LF line endings', `GET /v2/ HTTP/1.1\nHost: a\n\n${smuggled}`, 400],
    ['a space before the colon', `GET /v2/ HTTP/1.1\r\nHost : a\r\n\r\n${smuggled}`, 400],
    ['a GET with a body', `GET /v2/a/manifests/x HTTP/1.1\r\nHost: a\r\nContent-Length: ${smuggled.length}\r\n\r\n${smuggled}`, 400],
    ['an absolute-form target', `GET http://evil.example/v2/a/manifests/x HTTP/1.1\r\nHost: a\r\n\r\n`, 400],
    ['no Host', `GET /v2/ HTTP/1.1\r\n\r\n`, 400],
    ['headers larger than 16 KiB', `GET /v2/ HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(20 * 1024)}\r\n\r\n`, 431],
  ];

  for (const [name, bytes, status] of cases) {
    test(`${name}: ${status}, connection closed, nothing smuggled`, async () => {
      upstream.reset();
      const { text, closed } = await exchange(proxy.port, bytes);
      assert.equal(statuses(text)[0], status, text.slice(0, 300));
      assert.equal(statuses(text).length, 1, `more than one answer: ${text.slice(0, 500)}`);
      assert.equal(closed, true, 'the connection stayed open');
      assert.ok(!upstream.requests.some((r) => r.url.includes('smuggled')), 'the smuggled request reached the registry');
    });
  }

  test('a well-formed chunked upload still goes through', async () => {
    upstream.reset();
    const { text } = await exchange(proxy.port, 'PATCH /v2/a/blobs/uploads/u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n');
    assert.equal(statuses(text)[0], 200, text.slice(0, 300));
    assert.equal(upstream.requests.at(-1)?.bodyBytes, 3);
  });
});

describe('slow clients: headers and bodies that stop arriving', () => {
  const LIMITS = { headerTimeoutSeconds: 2, bodyIdleSeconds: 2 };
  let upstream: EchoUpstream;
  let config: ProxyConfigFile;
  let proxy: RunningProxy;

  before(async () => {
    upstream = await startEchoUpstream();
    config = await proxyConfig({ upstream: upstream.url, limits: LIMITS });
    proxy = await startProxy(config);
  });

  after(async () => {
    await proxy?.stop();
    await upstream?.stop();
    if (config) await disposeProxyConfig(config);
  });

  /** Writes `parts` one every `everyMs`, then waits; resolves with what came back and when the proxy closed. */
  function trickle(parts: string[], everyMs: number, waitMs: number): Promise<{ text: string; closedAfterMs: number | null }> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(proxy.port, '127.0.0.1');
      const started = Date.now();
      const chunks: Buffer[] = [];
      let i = 0;
      const writer = setInterval(() => {
        if (i < parts.length && !socket.destroyed) socket.write(parts[i++]!, 'latin1');
      }, everyMs);
      const timer = setTimeout(() => {
        clearInterval(writer);
        socket.destroy();
        resolve({ text: Buffer.concat(chunks).toString('latin1'), closedAfterMs: null });
      }, parts.length * everyMs + waitMs);
      socket.on('data', (c) => chunks.push(c));
      socket.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' || err.code === 'EPIPE' ? undefined : reject(err)));
      socket.on('close', () => {
        clearInterval(writer);
        clearTimeout(timer);
        resolve({ text: Buffer.concat(chunks).toString('latin1'), closedAfterMs: Date.now() - started });
      });
    });
  }

  test('slowloris: a request head sent a byte at a time is answered 408 and closed after headerTimeoutSeconds', async () => {
    const head = 'GET /v2/ HTTP/1.1\r\nHost: a\r\nX-Slow: ' + 'a'.repeat(200);
    const { text, closedAfterMs } = await trickle(head.split(''), 100, 3_000);
    assert.ok(closedAfterMs !== null, 'the connection stayed open');
    assert.ok(closedAfterMs < 2_000 + 1_500, `closed after ${closedAfterMs} ms`);
    assert.equal(statuses(text)[0], 408, text.slice(0, 200));
  });

  test('a body that stops arriving is cut after bodyIdleSeconds, and the registry side is closed too', async () => {
    upstream.reset();
    const head = 'PATCH /v2/a/blobs/uploads/u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n';
    const { closedAfterMs } = await trickle([head, '3\r\nabc\r\n'], 10, 5_000);
    assert.ok(closedAfterMs !== null, 'the connection stayed open');
    assert.ok(closedAfterMs >= 1_900 && closedAfterMs < 2_000 + 1_500, `closed after ${closedAfterMs} ms`);
    const forwarded = upstream.requests.at(-1);
    assert.equal(forwarded?.url, '/v2/a/blobs/uploads/u');
    await forwarded!.closed;
    assert.equal(forwarded!.bodyComplete, false);
    const line = await proxy.waitForLog((entry) => entry.msg === 'request' && entry.path === '/v2/a/blobs/uploads/u');
    assert.equal(line.failure, 'CLIENT_BODY_IDLE');
    assert.equal(line.status, 0);
  });

  test('a body that keeps trickling (a chunk a second, 5 s in all) is not cut', async () => {
    upstream.reset();
    const head = 'PATCH /v2/a/blobs/uploads/u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n';
    const { text } = await trickle([head, ...Array.from({ length: 5 }, () => '1\r\nx\r\n'), '0\r\n\r\n'], 1_000, 3_000);
    assert.equal(statuses(text)[0], 200, text.slice(0, 300));
    assert.equal(upstream.requests.at(-1)?.bodyBytes, 5);
  });
});
