/**
 * Proves the test harness against the real parts it drives (registry, skopeo, dockerd, openssl,
 * htpasswd), without the proxy: if one of these fails, a proxy test failing for the same reason
 * would be misread as a proxy bug.
 */
import assert from 'node:assert/strict';
import { access, writeFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startDockerd, type Dockerd } from '../harness/dockerd.js';
import { addLoopbackName } from '../harness/hosts.js';
import { startEchoUpstream, type EchoUpstream } from '../harness/echo-upstream.js';
import { writeHtpasswd } from '../harness/htpasswd.js';
import { makeOciImage, toDockerArchive, OCI_MANIFEST, type OciImage } from '../harness/oci-image.js';
import { run } from '../harness/process.js';
import { deterministicStream, get, head, pushBlobChunked, request } from '../harness/registry-client.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { makeCertDir, skopeoCopy } from '../harness/skopeo.js';
import { issueCert, makeTestCa, type TestCa } from '../harness/tls-ca.js';
import { makeTempDir, removeTempDir } from '../harness/tmp.js';

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('harness against the real registry and skopeo', () => {
  let registry: Registry;
  let work: string;
  let image: OciImage;

  before(async () => {
    work = await makeTempDir('harness-test');
    [registry, image] = await Promise.all([startRegistry(), makeOciImage(path.join(work, 'image'), { layerBytes: 512 * 1024 })]);
  });

  after(async () => {
    const pid = registry?.process.pid;
    await registry?.stop();
    await removeTempDir(work);
    if (pid !== undefined) assert.equal(isAlive(pid), false, 'registry process survived stop()');
    await assert.rejects(access(registry.dataDir), 'registry temp dir survived stop()');
  });

  it('makes reproducible OCI layouts', async () => {
    const a = await makeOciImage(path.join(work, 'seed-a'), { seed: 99, layerBytes: 4096 });
    const b = await makeOciImage(path.join(work, 'seed-b'), { seed: 99, layerBytes: 4096 });
    const c = await makeOciImage(path.join(work, 'seed-c'), { seed: 100, layerBytes: 4096 });
    assert.equal(a.manifestDigest, b.manifestDigest);
    assert.notEqual(a.manifestDigest, c.manifestDigest);
  });

  it('copies an OCI image into the registry and back out with skopeo', async () => {
    const dest = `docker://${registry.host}/harness/skopeo:v1`;
    const pushed = await skopeoCopy(image.ociRef, dest, { tlsVerify: false });
    assert.equal(pushed.digest, image.manifestDigest);

    const manifest = await get(`${registry.url}/v2/harness/skopeo/manifests/v1`, { headers: { accept: OCI_MANIFEST } });
    assert.equal(manifest.status, 200);
    assert.equal(manifest.headers['docker-content-digest'], image.manifestDigest);
    assert.deepEqual(
      JSON.parse(manifest.body.toString()).layers.map((l: { digest: string }) => l.digest),
      [image.layerDigest],
    );

    const back = path.join(work, 'back');
    await skopeoCopy(dest, `oci:${back}:copy`, { tlsVerify: false });
    await access(path.join(back, 'blobs', 'sha256', image.layerDigest.slice('sha256:'.length)));
    await access(path.join(back, 'blobs', 'sha256', image.manifestDigest.slice('sha256:'.length)));
  });

  it('pushes a 64 MiB blob in 8 MiB PATCHes and the registry commits it', async () => {
    const pushed = await pushBlobChunked(registry.url, 'harness/blob', deterministicStream(64 * 1024 * 1024, 7), {
      chunkBytes: 8 * 1024 * 1024,
    });
    assert.equal(pushed.status, 201);
    assert.equal(pushed.bytes, 64 * 1024 * 1024);
    assert.equal(pushed.patches, 8);
    assert.equal(pushed.locations.length, 9);
    for (const loc of pushed.locations) assert.ok(loc.startsWith(`${registry.url}/v2/harness/blob/blobs/uploads/`), loc);

    const blob = await head(`${registry.url}/v2/harness/blob/blobs/${pushed.digest}`);
    assert.equal(blob.status, 200);
    assert.equal(blob.headers['content-length'], String(64 * 1024 * 1024));
    assert.equal(blob.headers['docker-content-digest'], pushed.digest);
  });

  it('streams a source of unknown length with chunked PATCHes to the same digest', async () => {
    const known = await pushBlobChunked(registry.url, 'harness/blob2', deterministicStream(3 * 1024 * 1024 + 5, 8), { chunkBytes: 1 << 20 });
    async function* unknownLength(): AsyncGenerator<Buffer> {
      for await (const c of deterministicStream(3 * 1024 * 1024 + 5, 8)) yield c as Buffer;
    }
    const streamed = await pushBlobChunked(registry.url, 'harness/blob2', unknownLength(), { chunkBytes: 1 << 20 });
    assert.equal(streamed.digest, known.digest);
    assert.equal(streamed.status, 201);
  });
});

describe('harness TLS helpers: skopeo really verifies certificates', () => {
  let ca: TestCa;
  let registry: Registry;
  let work: string;
  let image: OciImage;

  before(async () => {
    work = await makeTempDir('harness-tls');
    ca = await makeTestCa();
    const leaf = await issueCert(ca, ['127.0.0.1', 'localhost']);
    const chain = path.join(work, 'chain.pem');
    await writeFile(chain, leaf.chainPem);
    [registry, image] = await Promise.all([
      startRegistry({ tls: { certFile: chain, keyFile: leaf.keyFile } }),
      makeOciImage(path.join(work, 'image'), { layerBytes: 64 * 1024 }),
    ]);
  });

  after(async () => {
    await registry?.stop();
    await ca?.dispose();
    await removeTempDir(work);
  });

  it('fails without the CA and succeeds with --dest-cert-dir', async () => {
    const dest = `docker://${registry.host}/harness/tls:v1`;
    const refused = await skopeoCopy(image.ociRef, dest, { allowFail: true });
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /certificate|x509/i);

    const certDir = await makeCertDir(ca.certPem);
    try {
      const ok = await skopeoCopy(image.ociRef, dest, { certDir });
      assert.equal(ok.digest, image.manifestDigest);
    } finally {
      await removeTempDir(certDir);
    }
  });

  it('registry-client verifies against the given CA', async () => {
    await assert.rejects(get(`${registry.url}/v2/`), /self[- ]signed|unable to (get|verify)|certificate/i);
    assert.equal((await get(`${registry.url}/v2/`, { ca: ca.certPem })).status, 200);
  });
});

describe('harness against a real dockerd', () => {
  let dockerd: Dockerd;
  let registry: Registry;
  let work: string;
  let archiveRef: string;
  let archive: string;

  before(async () => {
    work = await makeTempDir('harness-docker');
    archive = path.join(work, 'image.tar');
    const [d, r, img] = await Promise.all([
      // Only 127.0.0.0/8, and only in this test: the proxy's TLS tests must not use it.
      startDockerd({ insecureRegistries: ['127.0.0.0/8'] }),
      startRegistry(),
      makeOciImage(path.join(work, 'image'), { layerBytes: 512 * 1024 }),
    ]);
    dockerd = d;
    registry = r;
    archiveRef = await toDockerArchive(img, archive, 'harness/loaded:1');
  });

  after(async () => {
    const pids = [dockerd?.process.pid, dockerd?.containerdPid(), registry?.process.pid].filter((p): p is number => typeof p === 'number');
    await dockerd?.stop();
    await registry?.stop();
    await removeTempDir(work);
    for (const pid of pids) assert.equal(isAlive(pid), false, `pid ${pid} survived stop()`);
  });

  it('loads, pushes, removes, pulls and gets the same RepoDigest', async () => {
    const loaded = await dockerd.docker(['load', '-i', archive]);
    assert.match(loaded.stdout, new RegExp(`Loaded image: ${archiveRef}`));

    const remote = `${registry.host}/harness/docker`;
    await dockerd.docker(['tag', archiveRef, `${remote}:v1`]);
    const push = await dockerd.docker(['push', `${remote}:v1`]);
    const pushedDigest = /digest: (sha256:[0-9a-f]{64})/.exec(push.stdout)?.[1];
    assert.ok(pushedDigest, `no digest in docker push output:\n${push.stdout}`);

    // docker converts to a Docker v2 schema 2 manifest; the registry must serve that digest.
    const manifest = await head(`${registry.url}/v2/harness/docker/manifests/v1`, {
      headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' },
    });
    assert.equal(manifest.headers['docker-content-digest'], pushedDigest);

    await dockerd.docker(['rmi', `${remote}:v1`, archiveRef]);
    const gone = await dockerd.docker(['image', 'inspect', `${remote}:v1`], { allowFail: true });
    assert.notEqual(gone.code, 0);

    await dockerd.docker(['pull', `${remote}:v1`]);
    const inspect = await dockerd.docker(['image', 'inspect', '--format', '{{json .RepoDigests}}', `${remote}:v1`]);
    assert.deepEqual(JSON.parse(inspect.stdout), [`${remote}@${pushedDigest}`]);
  });

  it('keeps docker credentials in its own DOCKER_CONFIG', async () => {
    // The registry has no auth, so any login "succeeds": enough to see where docker writes it.
    await dockerd.login(registry.host, 'harness-user', 'harness-pass');
    const config = await run('cat', [path.join(dockerd.configDir, 'config.json')], { check: true });
    assert.ok(JSON.parse(config.stdout).auths[registry.host], config.stdout);
  });
});

describe('dockerd verifies certificates of a ::1 test name, not of 127.0.0.0/8', () => {
  let dockerd: Dockerd;
  let ca: TestCa;
  let loopback: Registry;
  let v6: Registry;
  let hostsEntry: { name: string; remove: () => Promise<void> };
  let work: string;
  let ref: string;

  before(async () => {
    work = await makeTempDir('harness-docker-tls');
    hostsEntry = await addLoopbackName();
    ca = await makeTestCa();
    const leaf = await issueCert(ca, ['127.0.0.1', hostsEntry.name]);
    const chain = path.join(work, 'chain.pem');
    await writeFile(chain, leaf.chainPem);
    const tls = { certFile: chain, keyFile: leaf.keyFile };
    const img = await makeOciImage(path.join(work, 'image'), { layerBytes: 64 * 1024 });
    [dockerd, loopback, v6, ref] = await Promise.all([
      startDockerd(),
      startRegistry({ tls }),
      startRegistry({ tls, bindHost: '::1' }),
      toDockerArchive(img, path.join(work, 'image.tar'), 'harness/tls:1'),
    ]);
    await dockerd.docker(['load', '-i', path.join(work, 'image.tar')]);
  });

  after(async () => {
    await dockerd?.stop();
    await loopback?.stop();
    await v6?.stop();
    await ca?.dispose();
    await hostsEntry?.remove();
    if (work) await removeTempDir(work);
  });

  it('127.0.0.0/8 is implicitly insecure: an untrusted certificate is accepted', async () => {
    await dockerd.docker(['tag', ref, `${loopback.host}/harness/tls:1`]);
    const push = await dockerd.docker(['push', `${loopback.host}/harness/tls:1`], { allowFail: true });
    assert.equal(push.code, 0, push.stderr);
  });

  it('a name that resolves to ::1 is verified, and trustCa makes it pass', async () => {
    const host = `${hostsEntry.name}:${v6.port}`;
    const remote = `${host}/harness/tls:1`;
    await dockerd.docker(['tag', ref, remote]);
    const refused = await dockerd.docker(['push', remote], { allowFail: true });
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /x509|certificate/i);

    await dockerd.trustCa(host, ca.certPem);
    const push = await dockerd.docker(['push', remote], { allowFail: true });
    assert.equal(push.code, 0, push.stderr);
    await dockerd.untrustCa(host);
  });
});

describe('echo upstream', () => {
  let up: EchoUpstream;
  before(async () => {
    up = await startEchoUpstream();
  });
  after(async () => {
    await up?.stop();
  });

  it('echoes what it received, body hashed', async () => {
    const res = await request(`${up.url}/v2/x/blobs/uploads/1?a=b`, {
      method: 'PATCH',
      body: deterministicStream(1 << 20, 1),
      headers: { 'x-probe': 'yes' },
      auth: { user: 'u', pass: 'p' },
    });
    assert.equal(res.status, 200);
    const echo = JSON.parse(res.body.toString());
    assert.equal(echo.method, 'PATCH');
    assert.equal(echo.url, '/v2/x/blobs/uploads/1?a=b');
    assert.equal(echo.bodyBytes, 1 << 20);
    assert.equal(echo.headers['x-probe'], 'yes');
    assert.match(echo.bodySha256, /^sha256:[0-9a-f]{64}$/);
  });

  it('answers as programmed: status, headers, a mid-body death, delays', async () => {
    up.enqueue({ status: 418, headers: { 'x-plan': '1' }, body: 'teapot' });
    const planned = await get(`${up.url}/a`);
    assert.equal(planned.status, 418);
    assert.equal(planned.headers['x-plan'], '1');
    assert.equal(planned.body.toString(), 'teapot');

    up.enqueue({ destroyAfterBytes: 100 });
    await assert.rejects(get(`${up.url}/b`));

    up.enqueue({ delayMs: 200 });
    const t0 = Date.now();
    await get(`${up.url}/c`);
    assert.ok(Date.now() - t0 >= 190);
  });

  it('tells when the client gave up on a request it never answered', async () => {
    up.enqueue({ neverAnswer: true });
    const req = http.get(`${up.url}/hang`);
    req.on('error', () => {});
    const rec = await up.waitForRequest((r) => r.url === '/hang');
    assert.equal(up.openSockets(), 1);
    assert.equal(rec.abortedByClient, false);
    req.destroy();
    await rec.closed;
    assert.equal(rec.abortedByClient, true);
    assert.equal(up.openSockets(), 0);
  });
});

describe('htpasswd', () => {
  it('writes bcrypt entries the real htpasswd verifies', async () => {
    const dir = await makeTempDir('htpasswd');
    try {
      const file = path.join(dir, 'htpasswd');
      await writeHtpasswd(file, { alice: 'correct horse', bob: 'b0b' }, 5);
      const content = (await run('cat', [file], { check: true })).stdout;
      assert.match(content, /^alice:\$2y\$05\$/m);
      assert.match(content, /^bob:\$2y\$05\$/m);
      assert.equal((await run('htpasswd', ['-v', '-i', file, 'alice'], { stdin: 'correct horse\n' })).code, 0);
      assert.notEqual((await run('htpasswd', ['-v', '-i', file, 'alice'], { stdin: 'wrong\n' })).code, 0);
    } finally {
      await removeTempDir(dir);
    }
  });
});
