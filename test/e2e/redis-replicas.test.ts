/**
 * Replicas that share only Redis accept each other's tokens and see each other's pushes at once
 * (cache invalidations); a missing Redis stops the start.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { proxyConfig, startProxy, runProxyCli, TEST_REDIS_SECRET_KEY, type ProxyConfigFile, type RunningProxy } from '../harness/proxy.js';
import { startFleet, type Fleet } from '../harness/fleet.js';
import { run } from '../harness/process.js';
import { SecretBox } from '../../src/state/secret-box.js';
import { freePort } from '../harness/ports.js';
import { startRedis, type RedisServer } from '../harness/redis.js';
import { get, request } from '../harness/registry-client.js';
import { MANIFEST_V2, pushSmallImage } from '../harness/small-image.js';
import type { Registry } from '../harness/registry.js';

const ALICE = { user: 'alice', pass: 'shared-secret-test' };
// Behind one load balancer the replicas are one service name.
const SERVICE = 'registry.test';

let fleet: Fleet;
let redis: RedisServer;
let registry: Registry;
let work: string;
let configs: ProxyConfigFile[];
let replicas: RunningProxy[];

before(async () => {
  fleet = await startFleet({
    name: 'redis-replicas',
    users: { alice: ALICE.pass },
    replicas: 2,
    // A TTL far longer than the test: only the invalidation through Redis can make B see A's push.
    config: ({ redis, upstream, htpasswdFile }) => ({ upstream, redis, auth: { mode: 'private', htpasswdFile, tokenService: SERVICE }, cache: { ttlSeconds: 300 } }),
  });
  ({ redis, registry, work, configs, replicas } = fleet);
});

after(() => fleet?.stop());

test('a token issued by one replica is accepted by the other', async () => {
  const [a, b] = replicas as [RunningProxy, RunningProxy];
  const res = await get(`${a.url}/token?service=${SERVICE}&scope=repository:shared/app:pull`, { auth: ALICE });
  assert.equal(res.status, 200);
  const { token } = JSON.parse(res.body.toString()) as { token: string };
  const atB = await get(`${b.url}/v2/shared/app/tags/list`, { auth: { bearer: token } });
  assert.notEqual(atB.status, 401, atB.body.toString());
  assert.equal(atB.status, 404, 'the registry itself answers: the repository does not exist yet');
});

test('a tag moved through one replica is seen through the other within moments, not after the TTL', async () => {
  const [a, b] = replicas as [RunningProxy, RunningProxy];
  const digestAt = async (base: string): Promise<unknown> =>
    (await request(`${base}/v2/shared/moving/manifests/latest`, { headers: { accept: MANIFEST_V2 }, auth: ALICE })).headers['docker-content-digest'];
  const first = await pushSmallImage(a.url, 'shared/moving', 'latest', { auth: ALICE });
  assert.equal(await digestAt(b.url), first.digest);
  assert.equal(await digestAt(b.url), first.digest, 'B answers from its cache now');
  const second = await pushSmallImage(a.url, 'shared/moving', 'latest', { auth: ALICE });
  // The message travels A → Redis → B beside the 201 travelling A → client → B; allow it a moment.
  const deadline = Date.now() + 2000;
  while ((await digestAt(b.url)) !== second.digest && Date.now() < deadline) await sleep(20);
  assert.equal(await digestAt(b.url), second.digest);
  assert.equal(await digestAt(a.url), second.digest);
});

test('failed logins spread over replicas count together (Redis)', async () => {
  const [a, b] = replicas as [RunningProxy, RunningProxy];
  const guess = (base: string, i: number) => get(`${base}/token?service=${SERVICE}`, { auth: { user: 'alice', pass: `spread-guess-${i}` } });
  // Five failures (the default failuresPerUser) through A, then B refuses the sixth without a check.
  for (let i = 0; i < 5; i++) assert.equal((await guess(a.url, i)).status, 401);
  const atB = await guess(b.url, 5);
  assert.equal(atB.status, 429, atB.body.toString());
  assert.ok(Number(atB.headers['retry-after']) >= 1);
  assert.match(JSON.parse(atB.body.toString()).errors[0].message, /too many failed logins for user "alice"/);
});

test('Redis killed: pushes and pulls go on, /readyz says degraded, no stale answers; back: sharing resumes without a restart', async () => {
  const [a, b] = replicas as [RunningProxy, RunningProxy];
  const readyz = async (base: string) => {
    const res = await get(`${base}/readyz`);
    return { status: res.status, body: JSON.parse(res.body.toString()) as { status: string; reasons?: string[] } };
  };
  const digestAt = async (base: string): Promise<unknown> =>
    (await request(`${base}/v2/shared/outage/manifests/latest`, { headers: { accept: MANIFEST_V2 }, auth: ALICE })).headers['docker-content-digest'];
  const before = await pushSmallImage(a.url, 'shared/outage', 'latest', { auth: ALICE });
  assert.equal(await digestAt(b.url), before.digest);

  // Pushes and pulls through both replicas all along, across the kill and the return.
  let stop = false;
  let rounds = 0;
  let failure: unknown = null;
  const traffic = (async () => {
    while (!stop && failure === null) {
      const pushed = await pushSmallImage((rounds % 2 ? b : a).url, 'shared/traffic', `t${rounds}`, { auth: ALICE });
      const pulled = await request(`${(rounds % 2 ? a : b).url}/v2/shared/traffic/manifests/t${rounds}`, { headers: { accept: MANIFEST_V2 }, auth: ALICE });
      assert.equal(pulled.headers['docker-content-digest'], pushed.digest);
      rounds++;
    }
  })().catch((err: unknown) => (failure = err));
  try {
    await sleep(300);
    await redis.kill();
    // Each connection notices on its own (the failed-login one may be first): wait for the one that matters.
    const waitFor = async (base: string, done: (body: { status: string; reasons?: string[] }) => boolean) => {
      const deadline = Date.now() + 10_000;
      while (!done((await readyz(base)).body) && Date.now() < deadline) await sleep(100);
      return readyz(base);
    };
    for (const r of [a, b]) {
      const seen = await waitFor(r.url, (body) => (body.reasons ?? []).some((reason) => reason.startsWith('Redis unreachable for cache invalidations')));
      assert.equal(seen.status, 200, 'degraded, not unready: the load balancer keeps sending traffic');
      assert.equal(seen.body.status, 'degraded');
      assert.match(seen.body.reasons!.join('; '), /Redis unreachable for cache invalidations/);
    }
    // Tokens (key in memory), pushes and pulls go on; B no longer answers from its cache, so the
    // tag moved through A is seen at once although no invalidation can travel.
    const during = await pushSmallImage(a.url, 'shared/outage', 'latest', { auth: ALICE });
    assert.equal(await digestAt(b.url), during.digest);
    const res = await get(`${a.url}/token?service=${SERVICE}&scope=repository:shared/outage:pull`, { auth: ALICE });
    assert.equal(res.status, 200);
    const { token } = JSON.parse(res.body.toString()) as { token: string };
    assert.equal((await get(`${b.url}/v2/shared/outage/tags/list`, { auth: { bearer: token } })).status, 200);

    await sleep(500);
    await redis.start();
    for (const r of [a, b]) assert.deepEqual((await waitFor(r.url, (body) => body.status === 'ready')).body, { status: 'ready' });
    assert.ok(b.logs().some((l) => String(l.msg).startsWith('Redis unreachable: cache invalidations between replicas pause')));
    // Cached again, and invalidated through Redis again.
    assert.equal(await digestAt(b.url), during.digest);
    const after = await pushSmallImage(a.url, 'shared/outage', 'latest', { auth: ALICE });
    const deadline = Date.now() + 2000;
    while ((await digestAt(b.url)) !== after.digest && Date.now() < deadline) await sleep(20);
    assert.equal(await digestAt(b.url), after.digest);
  } finally {
    stop = true;
    await traffic;
  }
  assert.equal(failure, null, `a push or pull failed during the outage: ${String(failure)}`);
  assert.ok(rounds > 10, `${rounds} push-and-pull rounds went on through the outage`);
});

test('an unreachable Redis stops the start with a message naming it', async () => {
  const config = await proxyConfig({ upstream: registry.url, redis: `redis://127.0.0.1:${await freePort()}/0`, auth: { mode: 'private', htpasswdFile: path.join(work, 'htpasswd') } });
  configs.push(config);
  const file = path.join(work, 'bad-redis.json');
  await writeFile(file, JSON.stringify(config));
  const res = await runProxyCli(['serve', '--config', file], { timeoutMs: 30_000 });
  assert.equal(res.code, 1);
  assert.match(res.stderr, /token signing key from Redis at redis:\/\/127\.0\.0\.1:\d+\/0/);
});

test('the token signing key is sealed in Redis; a key planted there is refused at start with one line', async () => {
  const KEY = 'registry-gate:token-signing-key';
  const cli = async (port: number, ...args: string[]) => (await run('redis-cli', ['-p', String(port), ...args], { timeoutMs: 10_000, check: true })).stdout.trim();
  // Its own Redis: the tests above kill the shared one, which comes back empty.
  const empty = await startRedis();
  try {
    const first = await proxyConfig({ upstream: registry.url, redis: empty.url, auth: { mode: 'private', htpasswdFile: path.join(work, 'htpasswd') } });
    configs.push(first);
    await (await startProxy(first)).stop();
    const stored = await cli(empty.port, 'GET', KEY);
    assert.match(stored, /^rg-sealed-v1:/, 'what Redis holds is sealed');
    assert.doesNotMatch(stored, /^[A-Za-z0-9+/]{43}=$/);

    const plants: [string, RegExp][] = [
      [Buffer.alloc(32, 7).toString('base64'), /it is not sealed/],
      [new SecretBox('another-secret-key-of-an-attacker!!').seal(KEY, Buffer.alloc(32, 7).toString('base64')), /its seal does not open with this secret key/],
    ];
    for (const [planted, why] of plants) {
      await cli(empty.port, 'SET', KEY, planted);
      const config = await proxyConfig({ upstream: registry.url, redis: empty.url, auth: { mode: 'private', htpasswdFile: path.join(work, 'htpasswd') } });
      configs.push(config);
      assert.equal(config.redisOptions?.secretKey, TEST_REDIS_SECRET_KEY);
      const file = path.join(work, 'planted.json');
      await writeFile(file, JSON.stringify(config));
      const res = await runProxyCli(['serve', '--config', file], { timeoutMs: 30_000 });
      assert.equal(res.code, 1, res.stderr);
      const lines = res.stderr.trim().split('\n');
      assert.equal(lines.length, 1, res.stderr);
      assert.match(lines[0]!, new RegExp(`^registry-gate: Redis key ${KEY} is refused: ${why.source}.*redis-cli DEL ${KEY}`));
      assert.equal(await cli(empty.port, 'GET', KEY), planted, 'the planted key is left for the operator to inspect');
    }
  } finally {
    await empty.stop();
  }
});
