/**
 * A 2 GiB blob pushed through the proxy over TLS as chunked PATCHes of unknown length (the way
 * docker streams big layers): it must commit with the right digest while the proxy's resident
 * memory stays flat, because bodies are streamed, never buffered.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { writeHtpasswd } from '../harness/htpasswd.js';
import { disposeProxyConfig, proxyConfig, startProxy, type ProxyConfigFile, type RunningProxy } from '../harness/proxy.js';
import { deterministicStream, head, pushBlobChunked } from '../harness/registry-client.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { makeTempDir, removeTempDir } from '../harness/tmp.js';

const GiB = 1024 ** 3;
const SIZE = 2 * GiB;
const RSS_LIMIT_KB = 150 * 1024;
const USER = { user: 'ci', pass: 'big-layers' };

let registry: Registry;
let proxy: RunningProxy;
let config: ProxyConfigFile;
let work: string;

before(async () => {
  work = await makeTempDir('large-upload');
  const htpasswdFile = path.join(work, 'htpasswd');
  await writeHtpasswd(htpasswdFile, { [USER.user]: USER.pass });
  registry = await startRegistry();
  config = await proxyConfig({ upstream: registry.url, tls: { mode: 'self-signed', names: ['127.0.0.1'] }, auth: { mode: 'private', htpasswdFile } });
  proxy = await startProxy(config);
});

after(async () => {
  await proxy?.stop();
  await registry?.stop();
  if (config) await disposeProxyConfig(config);
  if (work) await removeTempDir(work);
});

test('a 2 GiB chunked upload commits with the right digest, proxy RSS stays under 150 MB', async () => {
  // Hiding the length makes every PATCH use Transfer-Encoding: chunked.
  const unknownLength = deterministicStream(SIZE, 20261123).pipe(new PassThrough({ highWaterMark: 1024 * 1024 }));
  let peakKb = proxy.peakRssKb();
  const sampler = setInterval(() => (peakKb = Math.max(peakKb, proxy.rssKb())), 100);
  const started = Date.now();
  try {
    const result = await pushBlobChunked(proxy.url, 'big/layer', unknownLength, { chunkBytes: 512 * 1024 * 1024, auth: USER, insecure: true });
    assert.equal(result.status, 201);
    assert.equal(result.bytes, SIZE);
    assert.equal(result.patches, 4);
    const blob = await head(`${proxy.url}/v2/big/layer/blobs/${result.digest}`, { auth: USER, insecure: true });
    assert.equal(blob.status, 200);
    assert.equal(Number(blob.headers['content-length']), SIZE);
    assert.equal(blob.headers['docker-content-digest'], result.digest);
  } finally {
    clearInterval(sampler);
  }
  peakKb = Math.max(peakKb, proxy.peakRssKb());
  const seconds = (Date.now() - started) / 1000;
  console.log(`2 GiB through the proxy in ${seconds.toFixed(1)} s (${(SIZE / 1024 ** 2 / seconds).toFixed(0)} MiB/s); proxy peak RSS ${(peakKb / 1024).toFixed(1)} MiB`);
  assert.ok(peakKb < RSS_LIMIT_KB, `proxy peak RSS ${(peakKb / 1024).toFixed(1)} MiB`);
});
