/**
 * The response cache against the real registry: what a client sees after tags move, manifests
 * and blobs are deleted, through the proxy and behind its back; and that one registry request
 * serves a crowd asking for the same manifest at once.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startEchoUpstream, type EchoUpstream } from '../harness/echo-upstream.js';
import { writeHtpasswd } from '../harness/htpasswd.js';
import { disposeProxyConfig, proxyConfig, startProxy, type ProxyConfigFile, type RunningProxy } from '../harness/proxy.js';
import { request, type ClientAuth, type HttpResponse } from '../harness/registry-client.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { MANIFEST_V2, pushSmallImage, sha256Digest as sha } from '../harness/small-image.js';
import { makeTempDir, removeTempDir } from '../harness/tmp.js';

const ALICE = { user: 'alice', pass: 'wonderland' };
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const pushImage = (base: string, repo: string, tag: string, auth?: ClientAuth) => pushSmallImage(base, repo, tag, { auth });

const accept = { accept: MANIFEST_V2 };

describe('response cache (real registry)', () => {
  let registry: Registry;
  let work: string;
  const configs: ProxyConfigFile[] = [];
  const proxies: RunningProxy[] = [];

  async function proxyWith(cache: { ttlSeconds: number }): Promise<RunningProxy> {
    const config = await proxyConfig({ upstream: registry.url, auth: { mode: 'private', challenge: 'token', htpasswdFile: path.join(work, 'htpasswd') }, cache });
    configs.push(config);
    const proxy = await startProxy(config);
    proxies.push(proxy);
    return proxy;
  }

  let proxy: RunningProxy;

  before(async () => {
    work = await makeTempDir('cache');
    await writeHtpasswd(path.join(work, 'htpasswd'), { alice: ALICE.pass });
    registry = await startRegistry();
    proxy = await proxyWith({ ttlSeconds: 60 });
  });

  after(async () => {
    for (const p of proxies) await p.stop();
    await registry?.stop();
    for (const c of configs) await disposeProxyConfig(c);
    if (work) await removeTempDir(work);
  });

  const getManifest = (base: string, repo: string, ref: string, method = 'GET', headers: Record<string, string> = accept): Promise<HttpResponse> =>
    request(`${base}/v2/${repo}/manifests/${ref}`, { method, headers, auth: ALICE });

  test('a tag moved through the proxy is seen at once, even with a long TTL', async () => {
    const first = await pushImage(proxy.url, 'moves/app', 'latest', ALICE);
    const filled = await getManifest(proxy.url, 'moves/app', 'latest');
    assert.equal(filled.headers['docker-content-digest'], first.digest);
    const cached = await getManifest(proxy.url, 'moves/app', 'latest');
    assert.equal(cached.status, 200);
    assert.equal(cached.headers['docker-content-digest'], first.digest);
    assert.equal(sha(cached.body), first.digest, 'the cached body is the manifest itself');
    assert.equal(cached.headers['content-length'], String(cached.body.length));
    assert.equal(cached.headers['docker-distribution-api-version'], 'registry/2.0');
    assert.match(String(cached.headers.age), /^\d+$/, 'an answer from the cache says its age');

    const second = await pushImage(proxy.url, 'moves/app', 'latest', ALICE);
    const moved = await getManifest(proxy.url, 'moves/app', 'latest');
    assert.equal(moved.headers['docker-content-digest'], second.digest);
    assert.equal(sha(moved.body), second.digest);
    const head = await getManifest(proxy.url, 'moves/app', 'latest', 'HEAD');
    assert.equal(head.headers['docker-content-digest'], second.digest);
    assert.equal(head.body.length, 0);
  });

  test('a manifest or blob deleted through the proxy is gone at once', async () => {
    const image = await pushImage(proxy.url, 'deletes/app', 'v1', ALICE);
    assert.equal((await getManifest(proxy.url, 'deletes/app', image.digest)).status, 200);
    assert.equal((await getManifest(proxy.url, 'deletes/app', image.digest, 'HEAD')).status, 200);
    const deleted = await request(`${proxy.url}/v2/deletes/app/manifests/${image.digest}`, { method: 'DELETE', auth: ALICE });
    assert.equal(deleted.status, 202);
    assert.equal((await getManifest(proxy.url, 'deletes/app', image.digest)).status, 404);
    assert.equal((await getManifest(proxy.url, 'deletes/app', image.digest, 'HEAD')).status, 404);

    const blobUrl = `${proxy.url}/v2/deletes/app/blobs/${image.layer}`;
    const present = await request(blobUrl, { method: 'HEAD', auth: ALICE });
    assert.equal(present.status, 200);
    assert.equal(present.headers['content-length'], '512');
    assert.equal((await request(blobUrl, { method: 'HEAD', auth: ALICE })).headers['docker-content-digest'], image.layer);
    assert.equal((await request(blobUrl, { method: 'DELETE', auth: ALICE })).status, 202);
    assert.equal((await request(blobUrl, { method: 'HEAD', auth: ALICE })).status, 404);
  });

  test('each Accept gets the answer the registry gives for that Accept', async () => {
    await pushImage(proxy.url, 'accepts/app', 'latest', ALICE);
    const variants: Record<string, string>[] = [{ accept: MANIFEST_V2 }, { accept: OCI_INDEX }, { accept: `${OCI_INDEX}, ${MANIFEST_V2}` }, {}];
    for (const round of [1, 2]) {
      for (const headers of variants) {
        const direct = await request(`${registry.url}/v2/accepts/app/manifests/latest`, { headers });
        const viaProxy = await getManifest(proxy.url, 'accepts/app', 'latest', 'GET', headers);
        const what = `round ${round}, Accept ${JSON.stringify(headers)}`;
        assert.equal(viaProxy.status, direct.status, what);
        assert.equal(viaProxy.headers['content-type'], direct.headers['content-type'], what);
        assert.equal(viaProxy.headers['docker-content-digest'], direct.headers['docker-content-digest'], what);
        assert.deepEqual(viaProxy.body, direct.body, what);
      }
    }
  });

  test('cached answers still need authorization', async () => {
    await pushImage(proxy.url, 'guarded/app', 'latest', ALICE);
    assert.equal((await getManifest(proxy.url, 'guarded/app', 'latest')).status, 200);
    const anonymous = await request(`${proxy.url}/v2/guarded/app/manifests/latest`, { headers: accept });
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.body.includes(Buffer.from('schemaVersion')), false);
    const wrong = await request(`${proxy.url}/v2/guarded/app/manifests/latest`, { headers: accept, auth: { user: 'alice', pass: 'nope' } });
    assert.equal(wrong.status, 401);
  });

  test('a tag moved behind the proxy’s back is seen after at most ttlSeconds; with 0 at once', async () => {
    const brief = await proxyWith({ ttlSeconds: 2 });
    const uncached = await proxyWith({ ttlSeconds: 0 });
    const first = await pushImage(registry.url, 'behind/app', 'latest');
    assert.equal((await getManifest(brief.url, 'behind/app', 'latest')).headers['docker-content-digest'], first.digest);
    const filledAt = Date.now();
    assert.equal((await getManifest(uncached.url, 'behind/app', 'latest')).headers['docker-content-digest'], first.digest);

    const second = await pushImage(registry.url, 'behind/app', 'latest');
    const stale = await getManifest(brief.url, 'behind/app', 'latest');
    if (Date.now() - filledAt < 1500) assert.equal(stale.headers['docker-content-digest'], first.digest, 'within the TTL the cached answer stands');
    assert.equal((await getManifest(uncached.url, 'behind/app', 'latest')).headers['docker-content-digest'], second.digest);
    await sleep(Math.max(0, filledAt + 2100 - Date.now()));
    assert.equal((await getManifest(brief.url, 'behind/app', 'latest')).headers['docker-content-digest'], second.digest);
  });
});

describe('response cache: a crowd asking at once', () => {
  let upstream: EchoUpstream;
  let proxy: RunningProxy;
  let config: ProxyConfigFile;

  before(async () => {
    upstream = await startEchoUpstream();
    config = await proxyConfig({ upstream: upstream.url, cache: { ttlSeconds: 30 } });
    proxy = await startProxy(config);
  });

  after(async () => {
    await proxy?.stop();
    await upstream?.stop();
    if (config) await disposeProxyConfig(config);
  });

  test('twenty concurrent GETs of one manifest cost the registry one request', async () => {
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MANIFEST_V2, layers: [] }));
    upstream.setHandler((r) =>
      r.url === '/v2/crowd/app/manifests/latest'
        ? { status: 200, delayMs: 300, headers: { 'content-type': MANIFEST_V2, 'docker-content-digest': sha(manifest) }, body: manifest }
        : undefined,
    );
    const answers = await Promise.all(Array.from({ length: 20 }, () => request(`${proxy.url}/v2/crowd/app/manifests/latest`, { headers: accept })));
    for (const a of answers) {
      assert.equal(a.status, 200);
      assert.deepEqual(a.body, manifest);
      assert.equal(a.headers['docker-content-digest'], sha(manifest));
    }
    assert.equal(upstream.requests.filter((r) => r.url === '/v2/crowd/app/manifests/latest').length, 1);
    const lines = await proxy.waitForLog(() => proxy.logs().filter((l) => l.path === '/v2/crowd/app/manifests/latest').length === 20);
    assert.ok(lines);
    const outcomes = proxy.logs().filter((l) => l.path === '/v2/crowd/app/manifests/latest').map((l) => l.cache);
    assert.equal(outcomes.filter((c) => c === 'miss').length, 1);
    assert.equal(outcomes.filter((c) => c === 'hit').length, 19);
  });

  test('an error answer is not kept: the next caller asks the registry again', async () => {
    upstream.setHandler((r) => (r.url === '/v2/flaky/app/manifests/latest' ? { status: 500, body: '{"errors":[]}' } : undefined));
    assert.equal((await request(`${proxy.url}/v2/flaky/app/manifests/latest`, { headers: accept })).status, 500);
    assert.equal((await request(`${proxy.url}/v2/flaky/app/manifests/latest`, { headers: accept })).status, 500);
    assert.equal(upstream.requests.filter((r) => r.url === '/v2/flaky/app/manifests/latest').length, 2);
  });
});
