/**
 * ACME for three replicas that share only a real redis-server, behind HAProxy in TCP mode on the
 * ports pebble validates on: they start together with empty storage, exactly one order is placed,
 * every validation is answered whichever replica HAProxy hands it to, all three serve the
 * certificate, and a renewal ordered by one is served by all within seconds.
 *
 * Each order names three domains, so pebble makes three validations; HAProxy gives successive
 * connections to successive replicas, so at least two of them reach a replica that did not
 * place the order and must answer from what Redis holds.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { startHaProxy, type HaProxy } from '../harness/haproxy.js';
import { freePort, probeTls, startPebble, type Pebble } from '../harness/pebble.js';
import { disposeProxyConfig, proxyConfig, startProxy, type ProxyConfigFile, type RunningProxy } from '../harness/proxy.js';
import { startRedis, type RedisServer } from '../harness/redis.js';
import { get } from '../harness/registry-client.js';

const REPLICAS = ['a', 'b', 'c'];

describe('ACME across replicas', () => {
  let pebble: Pebble;
  let haproxy: HaProxy;
  let redis: RedisServer;
  let ports: Array<{ main: number; http: number }>;
  const running: Array<{ config: ProxyConfigFile; proxy: RunningProxy }> = [];

  before(async () => {
    const [tlsPort, httpPort] = [await freePort(), await freePort()];
    ports = [];
    for (let i = 0; i < REPLICAS.length; i++) ports.push({ main: await freePort(), http: await freePort() });
    pebble = await startPebble({ tlsPort, httpPort, validitySeconds: 30 });
    haproxy = await startHaProxy([
      { name: 'tls', port: tlsPort, servers: ports.map((p, i) => ({ name: REPLICAS[i]!, port: p.main })) },
      { name: 'http', port: httpPort, servers: ports.map((p, i) => ({ name: REPLICAS[i]!, port: p.http })) },
    ]);
  });

  after(async () => {
    await stopAll();
    await haproxy?.stop();
    await pebble?.stop();
  });

  async function stopAll(): Promise<void> {
    for (const { proxy, config } of running.splice(0)) {
      await proxy.stop();
      await disposeProxyConfig(config);
    }
    await redis?.stop();
  }

  /** Three replicas started at the same moment, sharing a new Redis and nothing else. */
  async function startFleet(challenge: 'http-01' | 'tls-alpn-01', domains: string[]): Promise<void> {
    // A test that failed left its fleet on the same ports.
    await stopAll();
    redis = await startRedis();
    const configs = await Promise.all(
      ports.map((p) =>
        proxyConfig({
          listen: `127.0.0.1:${p.main}`,
          httpListen: `127.0.0.1:${p.http}`,
          upstream: 'http://127.0.0.1:9',
          redis: redis.url,
          tls: { mode: 'acme', acme: { domains, challenges: [challenge], directoryUrl: pebble.directoryUrl, caFile: pebble.caFile } },
          auth: { mode: 'none' },
        }),
      ),
    );
    const proxies = await Promise.all(configs.map((config) => startProxy(config)));
    proxies.forEach((proxy, i) => running.push({ proxy, config: configs[i]! }));
  }

  /** The serial each replica presents for `name`, when it verifies against pebble's root. */
  async function servedSerials(name: string): Promise<Array<string | null>> {
    const root = await pebble.rootPem();
    return Promise.all(ports.map((p) => probeTls(p.main, name, root).then((probe) => probe.serial, () => null)));
  }

  /** What the replicas said of ACME and Redis, and pebble's last words: why an order count or a serial is not what was expected. */
  function fleetLog(): string {
    const logs = running.map(({ proxy }) => proxy.logs().filter((l) => /acme|Redis/.test(String(l.msg))).map((l) => JSON.stringify(l)).join('\n'));
    return `${logs.join('\n---\n')}\n${pebble.log().slice(-4000)}`;
  }

  async function waitForOneSerial(name: string, unlike: string | null, timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    let seen: Array<string | null> = [];
    while (Date.now() < deadline) {
      seen = await servedSerials(name);
      if (seen[0] && seen[0] !== unlike && seen.every((s) => s === seen[0])) return seen[0];
      await sleep(200);
    }
    throw new Error(`the replicas did not agree on a new certificate in ${timeoutMs} ms: ${JSON.stringify(seen)}\n${fleetLog()}`);
  }

  test('HTTP-01: one order for three replicas starting together; all serve it; a renewal reaches all within seconds', async () => {
    const before = pebble.orderCount();
    const domains = ['registry.test', 'mirror.test', 'cache.test'];
    await startFleet('http-01', domains);
    const first = await waitForOneSerial('registry.test', null, 30_000);
    assert.equal(pebble.orderCount() - before, 1, `exactly one order for the fleet\n${fleetLog()}`);
    assert.ok(pebble.issuedSerials().includes(first));
    const roles = await Promise.all(
      running.map(({ proxy }) =>
        proxy
          .waitForLog((l) => l.msg === 'acme: certificate issued and in use for new connections' || String(l.msg).startsWith('acme: using the certificate another replica obtained'), 5_000)
          .then((l) => (l.msg === 'acme: certificate issued and in use for new connections' ? 'ordered' : 'adopted')),
      ),
    );
    assert.deepEqual(roles.sort(), ['adopted', 'adopted', 'ordered'], 'one replica ordered, the other two took it from Redis');

    // 30 s certificates are renewed after about 20 s: by one replica, for all.
    const renewed = await waitForOneSerial('registry.test', first, 40_000);
    assert.notEqual(renewed, first);
    await sleep(1_000);
    assert.equal(pebble.orderCount() - before, 2, `the renewal was one order too\n${fleetLog()}`);
    assert.deepEqual(await servedSerials('cache.test'), [renewed, renewed, renewed]);
    await stopAll();
  });

  test('a replica of a fleet waiting for its first certificate is ready, degraded (behind a Service the CA reaches only ready pods)', async (t) => {
    const fleetRedis = await startRedis();
    // A registry that answers, so that the certificate is all that could make it unready.
    const registry = http.createServer((_req, res) => res.writeHead(200, { 'docker-distribution-api-version': 'registry/2.0' }).end('{}'));
    await new Promise<void>((r) => registry.listen(0, '127.0.0.1', r));
    const config = await proxyConfig({
      listen: `127.0.0.1:${await freePort()}`,
      upstream: `http://127.0.0.1:${(registry.address() as AddressInfo).port}`,
      redis: fleetRedis.url,
      tls: { mode: 'acme', acme: { domains: ['waiting.test'], challenges: ['tls-alpn-01'], directoryUrl: `https://127.0.0.1:${await freePort()}/dir` } },
      auth: { mode: 'none' },
    });
    const proxy = await startProxy(config);
    t.after(async () => {
      await proxy.stop();
      await disposeProxyConfig(config);
      await fleetRedis.stop();
      await new Promise<void>((r) => registry.close(() => r()));
    });
    const readyz = await get(`${proxy.url}/readyz`, { insecure: true });
    assert.equal(readyz.status, 200);
    const body = JSON.parse(readyz.body.toString()) as { status: string; reasons: string[] };
    assert.equal(body.status, 'degraded');
    assert.match(body.reasons[0]!, /^waiting for the ACME certificate for waiting\.test \(serving a temporary self-signed one\)/);
  });

  test('TLS-ALPN-01: the validation is answered by whichever replica HAProxy picks', async () => {
    const before = pebble.orderCount();
    await startFleet('tls-alpn-01', ['alpn-a.test', 'alpn-b.test', 'alpn-c.test']);
    const serial = await waitForOneSerial('alpn-b.test', null, 30_000);
    assert.equal(pebble.orderCount() - before, 1, fleetLog());
    assert.ok(pebble.issuedSerials().includes(serial));
  });
});
