/** The optional plain-HTTP listener: everything goes to https with 308, probes get real answers. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startEchoUpstream, type EchoUpstream } from '../harness/echo-upstream.js';
import { freePort } from '../harness/ports.js';
import { disposeProxyConfig, proxyConfig, startProxy, type ProxyConfigFile, type RunningProxy } from '../harness/proxy.js';
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
  assert.equal(upstream.requests.length, 0, 'nothing reaches the registry over plain HTTP');
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
