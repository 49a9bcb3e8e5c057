/**
 * `read-public` with the token flow, through TLS, with the real docker daemon, skopeo and curl:
 * anyone pulls, only users push — the mode the nginx recipe promises and cannot deliver.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { writeFile } from 'node:fs/promises';
import { startDockerd, type Dockerd } from '../harness/dockerd.js';
import { addLoopbackName, type LoopbackName } from '../harness/hosts.js';
import { makeOciImage, toDockerArchive, type OciImage } from '../harness/oci-image.js';
import { run } from '../harness/process.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { skopeoCopy } from '../harness/skopeo.js';
import { startTlsStack, type TlsStack } from '../harness/stack.js';
import { makeTempDir, removeTempDir } from '../harness/tmp.js';

const USERS = { admin: 'push-it-real-good' };
const ADMIN = { user: 'admin', pass: USERS.admin };

describe('read-public mode with the token flow', () => {
  let dockerd: Dockerd;
  let registry: Registry;
  let stack: TlsStack;
  let openCatalog: TlsStack;
  let basic: TlsStack;
  let names: LoopbackName[] = [];
  let image: OciImage;
  let localRef: string;
  let work: string;

  before(async () => {
    work = await makeTempDir('clients-read-public');
    names = [await addLoopbackName(), await addLoopbackName(), await addLoopbackName()];
    image = await makeOciImage(path.join(work, 'image'), { layerBytes: 512 * 1024 });
    [dockerd, registry, localRef] = await Promise.all([startDockerd(), startRegistry(), toDockerArchive(image, path.join(work, 'image.tar'), 'local/app:1')]);
    await dockerd.docker(['load', '-i', path.join(work, 'image.tar')]);
    stack = await startTlsStack({ auth: { mode: 'read-public', challenge: 'token', publicCatalog: false }, users: USERS, registry, hostsEntry: names[0] });
    openCatalog = await startTlsStack({ auth: { mode: 'read-public', challenge: 'token', publicCatalog: true }, users: USERS, registry, hostsEntry: names[1] });
    basic = await startTlsStack({ auth: { mode: 'read-public', challenge: 'basic' }, users: USERS, registry, hostsEntry: names[2] });
    await dockerd.trustCa(stack.host, stack.caPem);
    await dockerd.trustCa(basic.host, basic.caPem);
    // What anonymous users will pull: pushed by the admin.
    await skopeoCopy(image.ociRef, `docker://${stack.host}/public/seed:1`, { destCreds: ADMIN, certDir: stack.certDir });
  });

  after(async () => {
    await dockerd?.untrustCa(stack?.host ?? '').catch(() => {});
    await dockerd?.untrustCa(basic?.host ?? '').catch(() => {});
    await dockerd?.stop();
    await stack?.stop();
    await openCatalog?.stop();
    await basic?.stop();
    await registry?.stop();
    for (const n of names) await n.remove();
    if (work) await removeTempDir(work);
  });

  test('docker pulls anonymously', async () => {
    const res = await dockerd.docker(['pull', `${stack.host}/public/seed:1`], { allowFail: true });
    assert.equal(res.code, 0, res.stderr);
  });

  test('docker login with a wrong password fails', async () => {
    const res = await dockerd.login(stack.host, 'admin', 'guess', { allowFail: true });
    assert.notEqual(res.code, 0);
    assert.match(res.stderr, /unauthorized|401/i);
  });

  test('docker push without login fails with a clear "unauthorized"', async () => {
    const remote = `${stack.host}/public/anonymous:1`;
    await dockerd.docker(['tag', localRef, remote]);
    const res = await dockerd.docker(['push', remote], { allowFail: true });
    assert.notEqual(res.code, 0);
    assert.match(res.stderr, /denied: authentication required to push to public\/anonymous/);
  });

  test('docker login then push works', async () => {
    await dockerd.login(stack.host, 'admin', USERS.admin);
    const remote = `${stack.host}/public/docker:1`;
    await dockerd.docker(['tag', localRef, remote]);
    const res = await dockerd.docker(['push', remote], { allowFail: true });
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /digest: sha256:[0-9a-f]{64}/);
    await dockerd.docker(['logout', stack.host]);
  });

  test('skopeo pulls anonymously; pushes with credentials; without them gets "unauthorized"', async () => {
    const pulled = await skopeoCopy(`docker://${stack.host}/public/seed:1`, `oci:${path.join(work, 'pulled')}:x`, { srcCreds: 'anonymous', certDir: stack.certDir });
    assert.equal(pulled.code, 0, pulled.stderr);
    const pushed = await skopeoCopy(image.ociRef, `docker://${stack.host}/public/skopeo:1`, { destCreds: ADMIN, certDir: stack.certDir });
    assert.equal(pushed.digest, image.manifestDigest);
    const refused = await skopeoCopy(image.ociRef, `docker://${stack.host}/public/skopeo-anon:1`, { destCreds: 'anonymous', certDir: stack.certDir, allowFail: true });
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /authentication required/i);
  });

  test('curl -u lists repositories; anonymous listing follows publicCatalog', async () => {
    const caFile = path.join(work, 'ca.pem');
    await writeFile(caFile, stack.caPem);
    const curl = async (url: string, ...extra: string[]) => {
      const res = await run('curl', ['-sS', '--cacert', caFile, '-o', '-', '-w', '\n%{http_code}', ...extra, url], { stdin: '' });
      const cut = res.stdout.lastIndexOf('\n');
      return { status: res.stdout.slice(cut + 1), body: res.stdout.slice(0, cut), stderr: res.stderr };
    };
    const userNetrc = path.join(work, 'netrc');
    await writeFile(userNetrc, `machine ${stack.host.split(':')[0]} login admin password ${USERS.admin}\n`, { mode: 0o600 });

    const withUser = await curl(`${stack.url}/v2/_catalog`, '--netrc-file', userNetrc);
    assert.equal(withUser.status, '200', withUser.body + withUser.stderr);
    assert.ok((JSON.parse(withUser.body).repositories as string[]).includes('public/seed'));

    const anonymous = await curl(`${stack.url}/v2/_catalog`);
    assert.equal(anonymous.status, '401', anonymous.body);
    assert.equal(JSON.parse(anonymous.body).errors[0].code, 'UNAUTHORIZED');

    await writeFile(caFile, openCatalog.caPem);
    const open = await curl(`${openCatalog.url}/v2/_catalog`);
    assert.equal(open.status, '200', open.body);
  });

  test('with challenge "basic", as documented: skopeo pulls anonymously, docker cannot; logged-in docker pushes', async () => {
    const pulled = await skopeoCopy(`docker://${basic.host}/public/seed:1`, `oci:${path.join(work, 'basic-pulled')}:x`, { srcCreds: 'anonymous', certDir: basic.certDir });
    assert.equal(pulled.code, 0, pulled.stderr);
    const anonymous = await dockerd.docker(['pull', `${basic.host}/public/seed:1`], { allowFail: true });
    assert.notEqual(anonymous.code, 0);
    assert.match(anonymous.stderr, /no basic auth credentials/);
    await dockerd.login(basic.host, 'admin', USERS.admin);
    const remote = `${basic.host}/public/basic:1`;
    await dockerd.docker(['tag', localRef, remote]);
    const push = await dockerd.docker(['push', remote], { allowFail: true });
    assert.equal(push.code, 0, push.stderr);
    await dockerd.docker(['logout', basic.host]);
  });
});
