/**
 * The listeners as clients meet them: TLS 1.2 at least on the main one; the optional plain-HTTP
 * one sends everything to https with 308 and gives probes real answers.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import { startEchoUpstream, type EchoUpstream } from '../harness/echo-upstream.js';
import { freePort } from '../harness/ports.js';
import { disposeProxyConfig, proxyConfig, startProxy, type ProxyConfigFile, type RunningProxy } from '../harness/proxy.js';
import { run } from '../harness/process.js';
import { request } from '../harness/registry-client.js';

let upstream: EchoUpstream;
let proxy: RunningProxy;
let config: ProxyConfigFile;

before(async () => {
  upstream = await startEchoUpstream();
  config = await proxyConfig({ upstream: upstream.url, httpListen: `127.0.0.1:${await freePort()}`, tls: { mode: 'self-signed', names: ['registry.test'] } });
  proxy = await startProxy(config);
});

after(async () => {
  await proxy?.stop();
  await upstream?.stop();
  if (config) await disposeProxyConfig(config);
});

test('requests on httpListen are redirected to the https listener with 308, path and query kept', async () => {
  const res = await request(`${proxy.httpUrl}/v2/app/manifests/latest?x=1`, { method: 'PUT', headers: { host: 'registry.test' }, body: 'ignored' });
  assert.equal(res.status, 308);
  assert.equal(res.headers.location, `https://registry.test:${proxy.port}/v2/app/manifests/latest?x=1`);
  // The start-up check's GET /v2/ is the proxy's own; nothing of the client's may arrive.
  assert.deepEqual(upstream.requests.filter((r) => r.url !== '/v2/').map((r) => r.url), [], 'nothing reaches the registry over plain HTTP');
});

test('health endpoints answer on httpListen instead of redirecting', async () => {
  assert.equal((await request(`${proxy.httpUrl}/healthz`)).status, 200);
  const ready = await request(`${proxy.httpUrl}/readyz`);
  assert.equal(ready.status, 200, ready.body.toString());
});

test('a hostile Host on httpListen gets 400, not a redirect somewhere else', async () => {
  const res = await request(`${proxy.httpUrl}/v2/`, { headers: { host: 'evil.example/../x' } });
  assert.equal(res.status, 400);
});

function handshake(port: number, version: tls.SecureVersion): Promise<string> {
  return new Promise((resolve) => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      servername: 'registry.test',
      rejectUnauthorized: false,
      minVersion: version,
      maxVersion: version,
      // Let the client offer old protocols at all; the refusal must come from the proxy.
      ciphers: 'DEFAULT@SECLEVEL=0',
    });
    socket.once('secureConnect', () => {
      resolve(`ok ${socket.getProtocol()}`);
      socket.destroy();
    });
    socket.once('error', (err) => resolve(`refused: ${err.message}`));
  });
}

test('the main listener speaks TLS 1.2 and 1.3, and refuses 1.1 and 1.0', async () => {
  assert.equal(await handshake(proxy.port, 'TLSv1.3'), 'ok TLSv1.3');
  assert.equal(await handshake(proxy.port, 'TLSv1.2'), 'ok TLSv1.2');
  assert.match(await handshake(proxy.port, 'TLSv1.1'), /^refused: .*alert protocol version/);
  assert.match(await handshake(proxy.port, 'TLSv1'), /^refused: .*alert protocol version/);
});

/** The accept queue of the listener on `port`, as the kernel reports it (`ss`: Send-Q of a listening socket). */
async function acceptQueue(port: number): Promise<number> {
  const { stdout } = await run('ss', ['-ltnH', `sport = :${port}`], { check: true, timeoutMs: 10_000 });
  const fields = stdout.trim().split(/\s+/);
  return Number(fields[2]);
}

test('the listeners queue a crowd of 4,096 connections, not Node’s 511 (or somaxconn, when that is lower)', async () => {
  const somaxconn = Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8'));
  const expected = Math.min(4096, somaxconn);
  assert.equal(await acceptQueue(proxy.port), expected);
  assert.equal(await acceptQueue(Number(new URL(proxy.httpUrl!).port)), expected);
});
