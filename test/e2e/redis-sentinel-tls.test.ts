/**
 * The replicas' Redis reached the ways operators run it: over TLS (rediss:// with the CA in
 * redisOptions.caFile) and through Redis Sentinel, whose failover of the primary during pushes
 * the replicas follow without an error reaching a client.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { writeHtpasswd } from '../harness/htpasswd.js';
import { disposeProxyConfig, proxyConfig, runProxyCli, startProxy, type ProxyConfigFile, type RunningProxy } from '../harness/proxy.js';
import { startRedis, startSentinel, type RedisSentinel, type RedisServer } from '../harness/redis.js';
import { get, request } from '../harness/registry-client.js';
import { MANIFEST_V2, pushSmallImage } from '../harness/small-image.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { issueCert, makeTestCa, type TestCa } from '../harness/tls-ca.js';
import { makeTempDir, removeTempDir } from '../harness/tmp.js';

const ALICE = { user: 'alice', pass: 'sentinel-and-tls' };
const SERVICE = 'registry.test';

describe('Redis over TLS and through Sentinel', () => {
  let work: string;
  let htpasswdFile: string;
  let registry: Registry;
  let ca: TestCa;
  const servers: RedisServer[] = [];
  const sentinels: RedisSentinel[] = [];
  const configs: ProxyConfigFile[] = [];
  const proxies: RunningProxy[] = [];

  before(async () => {
    work = await makeTempDir('redis-sentinel-tls');
    htpasswdFile = path.join(work, 'htpasswd');
    await writeHtpasswd(htpasswdFile, { [ALICE.user]: ALICE.pass });
    [registry, ca] = await Promise.all([startRegistry(), makeTestCa()]);
  });

  after(async () => {
    for (const p of proxies) await p.stop();
    for (const c of configs) await disposeProxyConfig(c);
    for (const s of sentinels) await s.stop();
    for (const s of servers) await s.stop();
    await registry?.stop();
    await ca?.dispose();
    if (work) await removeTempDir(work);
  });

  async function pair(redis: ProxyConfigFile['redis'], redisOptions: object): Promise<[RunningProxy, RunningProxy]> {
    const started: RunningProxy[] = [];
    for (let i = 0; i < 2; i++) {
      const config = await proxyConfig({ upstream: registry.url, redis, redisOptions, auth: { mode: 'private', htpasswdFile, tokenService: SERVICE }, cache: { ttlSeconds: 300 } });
      configs.push(config);
      const proxy = await startProxy(config);
      proxies.push(proxy);
      started.push(proxy);
    }
    return started as [RunningProxy, RunningProxy];
  }

  const digestAt = async (base: string, repo: string): Promise<unknown> =>
    (await request(`${base}/v2/${repo}/manifests/latest`, { headers: { accept: MANIFEST_V2 }, auth: ALICE })).headers['docker-content-digest'];

  async function seenThrough(b: RunningProxy, repo: string, digest: string): Promise<unknown> {
    const deadline = Date.now() + 3000;
    while ((await digestAt(b.url, repo)) !== digest && Date.now() < deadline) await sleep(20);
    return digestAt(b.url, repo);
  }

  async function sharesTokens(a: RunningProxy, b: RunningProxy, repo: string): Promise<void> {
    const res = await get(`${a.url}/token?service=${SERVICE}&scope=repository:${repo}:pull`, { auth: ALICE });
    assert.equal(res.status, 200);
    const { token } = JSON.parse(res.body.toString()) as { token: string };
    // Accepted: the registry itself answers (404 while the repository does not exist yet).
    const status = (await get(`${b.url}/v2/${repo}/tags/list`, { auth: { bearer: token } })).status;
    assert.ok(status === 200 || status === 404, `${b.url} answered ${status} to the other replica's token`);
  }

  test('rediss:// with redisOptions.caFile: tokens and invalidations shared; without the CA the start names the cause', async () => {
    const cert = await issueCert(ca, ['127.0.0.1']);
    const redis = await startRedis({ tls: { certFile: cert.certFile, keyFile: cert.keyFile, caFile: ca.certFile } });
    servers.push(redis);
    assert.match(redis.url, /^rediss:/);

    const untrusting = await proxyConfig({ upstream: registry.url, redis: redis.url, auth: { mode: 'private', htpasswdFile } });
    configs.push(untrusting);
    const file = path.join(work, 'untrusting.json');
    await writeFile(file, JSON.stringify(untrusting));
    const refused = await runProxyCli(['serve', '--config', file], { timeoutMs: 30_000 });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^registry-gate: redis: cannot load the token signing key from Redis at rediss:\/\/127\.0\.0\.1:\d+\/0 \(.*(self-signed|unable to verify|certificate).*\); start Redis or correct "redis"/m);

    const [a, b] = await pair(redis.url, { caFile: ca.certFile });
    await sharesTokens(a, b, 'tls/app');
    await pushSmallImage(a.url, 'tls/app', 'latest', { auth: ALICE });
    const moved = await pushSmallImage(a.url, 'tls/app', 'latest', { auth: ALICE });
    assert.equal(await digestAt(b.url, 'tls/app'), moved.digest);
    const again = await pushSmallImage(a.url, 'tls/app', 'latest', { auth: ALICE });
    assert.equal(await seenThrough(b, 'tls/app', again.digest), again.digest, 'the invalidation came through the TLS connection');
  });

  test('Sentinel: the primary fails over during pushes; no client sees an error, and sharing goes on with the new primary', async () => {
    const primary = await startRedis();
    const replica = await startRedis({ replicaOf: primary.port });
    servers.push(primary, replica);
    const sentinel = await startSentinel(primary);
    sentinels.push(sentinel);
    const [a, b] = await pair('redis://mymaster/0', { sentinels: [sentinel.address] });
    await sharesTokens(a, b, 'sentinel/app');

    let stop = false;
    let pushes = 0;
    const pushing = (async () => {
      while (!stop) {
        // Every push and every read must succeed: pushSmallImage throws on any other status.
        await pushSmallImage((pushes % 2 ? b : a).url, 'sentinel/app', `t${pushes}`, { auth: ALICE });
        pushes++;
      }
    })();
    await sleep(1_000);
    await sentinel.failover();
    assert.equal(await sentinel.master(), replica.port);
    await sleep(3_000);
    stop = true;
    await pushing;
    assert.ok(pushes > 10, `${pushes} pushes`);

    // With the new primary: the other's tokens, and invalidations again.
    await sharesTokens(b, a, 'sentinel/app');
    await pushSmallImage(a.url, 'sentinel/moving', 'latest', { auth: ALICE });
    const first = await digestAt(b.url, 'sentinel/moving');
    const moved = await pushSmallImage(a.url, 'sentinel/moving', 'latest', { auth: ALICE });
    assert.notEqual(first, moved.digest);
    assert.equal(await seenThrough(b, 'sentinel/moving', moved.digest), moved.digest);
    for (const p of [a, b]) assert.equal(JSON.parse((await get(`${p.url}/readyz`)).body.toString()).status, 'ready');
  });
});
