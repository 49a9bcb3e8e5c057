/**
 * Three gate replicas behind HAProxy (TCP mode, round-robin) on one port, sharing only a real
 * Redis, in front of two registry replicas that share storage and http.secret: a chunked upload
 * whose PATCHes land on different gates and registries commits, docker pushes and pulls while a
 * replica is killed and started again, and the restarted replica accepts the others' tokens.
 * The same gates behind nginx's `stream` balancer: a push survives a replica killed under it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { startDockerd, type Dockerd } from '../harness/dockerd.js';
import { startHaProxy, type HaProxy } from '../harness/haproxy.js';
import { startNginxStream, type NginxStream } from '../harness/nginx-stream.js';
import { writeHtpasswd } from '../harness/htpasswd.js';
import { makeOciImage, toDockerArchive } from '../harness/oci-image.js';
import { freePort } from '../harness/ports.js';
import { disposeProxyConfig, proxyConfig, startProxy, type ProxyConfigFile, type RunningProxy } from '../harness/proxy.js';
import { startRedis, type RedisServer } from '../harness/redis.js';
import { deterministicStream, get, head, pushBlobChunked } from '../harness/registry-client.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { issueCert, makeTestCa, type TestCa } from '../harness/tls-ca.js';
import { makeTempDir, removeTempDir } from '../harness/tmp.js';

const ALICE = { user: 'alice', pass: 'behind-the-balancer' };
const MiB = 1024 * 1024;

describe('replicas behind a load balancer', () => {
  let work: string;
  let ca: TestCa;
  let redis: RedisServer;
  let registries: Registry[] = [];
  const configs: ProxyConfigFile[] = [];
  const gates: RunningProxy[] = [];
  let haproxy: HaProxy;
  let nginx: NginxStream;
  let dockerd: Dockerd;
  let lb: string;
  let lbHost: string;
  let nginxHost: string;
  let localRef: string;
  let nginxRef: string;

  before(async () => {
    work = await makeTempDir('replicas-lb');
    ca = await makeTestCa();
    const cert = await issueCert(ca, ['127.0.0.1', 'localhost']);
    const htpasswdFile = path.join(work, 'htpasswd');
    await writeHtpasswd(htpasswdFile, { [ALICE.user]: ALICE.pass, bob: 'bobs-real-password' });
    const storage = path.join(work, 'storage');
    const secret = randomBytes(16).toString('hex');
    [redis, ...registries] = await Promise.all([startRedis(), startRegistry({ dataDir: storage, secret }), startRegistry({ dataDir: storage, secret })]);
    const [lbPort, nginxPort] = [await freePort(), await freePort()];
    lbHost = `127.0.0.1:${lbPort}`;
    nginxHost = `127.0.0.1:${nginxPort}`;
    lb = `https://${lbHost}`;
    for (let i = 0; i < 3; i++) {
      configs.push(
        await proxyConfig({
          upstream: registries[i % 2]!.url,
          redis: redis.url,
          tls: { mode: 'files', certFile: cert.certFile, keyFile: cert.keyFile },
          // Behind the balancer the replicas are one service: tokens name its address.
          auth: { mode: 'private', htpasswdFile, tokenService: lbHost },
        }),
      );
    }
    gates.push(...(await Promise.all(configs.map((c) => startProxy(c)))));
    haproxy = await startHaProxy([{ name: 'registry', port: lbPort, servers: gates.map((g, i) => ({ name: `gate${i}`, port: g.port })) }]);
    nginx = await startNginxStream(nginxPort, gates.map((g) => g.port));
    // Two images of their own layers: a push whose layers the registry already holds uploads nothing.
    const [image, second] = await Promise.all([
      makeOciImage(path.join(work, 'image'), { layerBytes: 48 * MiB, layers: 2 }),
      makeOciImage(path.join(work, 'image2'), { layerBytes: 48 * MiB, layers: 2 }),
    ]);
    [dockerd, localRef, nginxRef] = await Promise.all([
      startDockerd(),
      toDockerArchive(image, path.join(work, 'image.tar'), 'local/replicated:1'),
      toDockerArchive(second, path.join(work, 'image2.tar'), 'local/through-nginx:1'),
    ]);
    await dockerd.docker(['load', '-i', path.join(work, 'image.tar')], { timeoutMs: 120_000 });
    await dockerd.docker(['load', '-i', path.join(work, 'image2.tar')], { timeoutMs: 120_000 });
  });

  after(async () => {
    await dockerd?.stop();
    await haproxy?.stop();
    await nginx?.stop();
    for (const g of gates) await g.stop();
    for (const c of configs) await disposeProxyConfig(c);
    for (const r of registries) await r.stop();
    await redis?.stop();
    await ca?.dispose();
    if (work) await removeTempDir(work);
  });

  const patchesServed = (gate: RunningProxy, repo: string) =>
    gate.logs().filter((l) => l.msg === 'request' && l.method === 'PATCH' && String(l.path).startsWith(`/v2/${repo}/blobs/uploads/`)).length;

  test('a 256 MiB chunked upload whose PATCHes alternate between replicas and registries commits with the right digest', async () => {
    const total = 256 * MiB;
    const token = JSON.parse((await get(`${lb}/token?service=${lbHost}&scope=repository:big/blob:pull,push`, { auth: ALICE, ca: ca.certPem })).body.toString()) as { token: string };
    const pushed = await pushBlobChunked(lb, 'big/blob', deterministicStream(total, 2026), {
      chunkBytes: 32 * MiB,
      totalBytes: total,
      auth: { bearer: token.token },
      ca: ca.certPem,
      freshConnections: true,
    });
    assert.equal(pushed.status, 201);
    assert.equal(pushed.patches, 8);
    const blob = await head(`${lb}/v2/big/blob/blobs/${pushed.digest}`, { auth: { bearer: token.token }, ca: ca.certPem });
    assert.equal(blob.status, 200);
    assert.equal(blob.headers['docker-content-digest'], pushed.digest);
    assert.equal(Number(blob.headers['content-length']), total);
    // Access-log lines are written in batches; give them a moment.
    await new Promise((r) => setTimeout(r, 500));
    const perGate = gates.map((g) => patchesServed(g, 'big/blob'));
    assert.equal(perGate.reduce((a, b) => a + b, 0), 8, JSON.stringify(perGate));
    assert.ok(perGate.filter((n) => n > 0).length >= 2, `PATCHes reached several gates: ${JSON.stringify(perGate)}`);
    assert.ok(perGate[1]! > 0 && perGate[0]! + perGate[2]! > 0, `and both registries (gate 1 → registry 1, gates 0 and 2 → registry 0): ${JSON.stringify(perGate)}`);
  });

  test('failed logins spread over the replicas by the balancer lock the guesser out of every replica', async () => {
    const guess = (base: string, i: number) => get(`${base}/token?service=${lbHost}`, { auth: { user: 'bob', pass: `lb-guess-${i}` }, ca: ca.certPem });
    // Five failures (failuresPerUser), each on a new connection: round-robin over the three gates.
    for (let i = 0; i < 5; i++) assert.equal((await guess(lb, i)).status, 401);
    for (const gate of gates) {
      const refused = await guess(gate.url, 99);
      assert.equal(refused.status, 429, `${gate.url}: ${refused.body.toString()}`);
      assert.match(JSON.parse(refused.body.toString()).errors[0].message, /too many failed logins for user "bob"/);
    }
  });

  test('docker pushes and pulls through the balancer while a replica is killed and started again', async () => {
    await dockerd.login(lbHost, ALICE.user, ALICE.pass);
    const remote = `${lbHost}/team/replicated:1`;
    await dockerd.docker(['tag', localRef, remote]);
    let finished = false;
    const pushing = dockerd.docker(['push', remote], { allowFail: true, timeoutMs: 300_000 }).finally(() => (finished = true));
    // Into the layer uploads (docker compresses each layer as it sends it).
    const opened = (l: Record<string, unknown>) => l.msg === 'request' && l.method === 'POST' && String(l.path).startsWith('/v2/team/replicated/blobs/uploads/');
    await Promise.any(gates.map((g) => g.waitForLog(opened, 30_000)));
    await gates[1]!.stop({ signal: 'SIGKILL' });
    assert.equal(finished, false, 'the replica was killed while the push was under way');
    const pushed = await pushing;
    assert.equal(pushed.code, 0, pushed.stderr);
    const digest = /digest: (sha256:[0-9a-f]{64})/.exec(pushed.stdout)?.[1];
    assert.ok(digest, pushed.stdout);

    gates[1] = await startProxy(configs[1]!);
    await dockerd.docker(['rmi', remote, localRef]);
    const pulled = await dockerd.docker(['pull', remote], { allowFail: true, timeoutMs: 300_000 });
    assert.equal(pulled.code, 0, pulled.stderr);
    assert.match(pulled.stdout, new RegExp(`Digest: ${digest}`));

    // The restarted replica took the token key from Redis: a token from another one works there.
    const issued = await get(`${gates[0]!.url}/token?service=${lbHost}&scope=repository:team/replicated:pull`, { auth: ALICE, ca: ca.certPem });
    assert.equal(issued.status, 200, issued.body.toString());
    const token = JSON.parse(issued.body.toString()) as { token: string };
    const atRestarted = await get(`${gates[1]!.url}/v2/team/replicated/tags/list`, { auth: { bearer: token.token }, ca: ca.certPem });
    assert.equal(atRestarted.status, 200, atRestarted.body.toString());
  });

  test('behind nginx stream (docs/deployment.md settings), a docker push survives a replica killed under it', async () => {
    // The gates' challenges name their tokenService (HAProxy's address); the token comes through nginx all the same.
    await dockerd.login(nginxHost, ALICE.user, ALICE.pass);
    const remote = `${nginxHost}/team/through-nginx:1`;
    await dockerd.docker(['tag', nginxRef, remote]);
    let finished = false;
    const pushing = dockerd.docker(['push', remote], { allowFail: true, timeoutMs: 300_000 }).finally(() => (finished = true));
    const opened = (l: Record<string, unknown>) => l.msg === 'request' && l.method === 'POST' && String(l.path).startsWith('/v2/team/through-nginx/blobs/uploads/');
    await Promise.any(gates.map((g) => g.waitForLog(opened, 30_000)));
    await gates[2]!.stop({ signal: 'SIGKILL' });
    assert.equal(finished, false, 'the replica was killed while the push was under way');
    const pushed = await pushing;
    assert.equal(pushed.code, 0, pushed.stderr);
    const digest = /digest: (sha256:[0-9a-f]{64})/.exec(pushed.stdout)?.[1];
    assert.ok(digest, pushed.stdout);
    gates[2] = await startProxy(configs[2]!);
    const manifest = await head(`${gates[0]!.url}/v2/team/through-nginx/manifests/1`, {
      auth: ALICE,
      ca: ca.certPem,
      headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json' },
    });
    assert.equal(manifest.status, 200);
    assert.equal(manifest.headers['docker-content-digest'], digest);
  });
});
