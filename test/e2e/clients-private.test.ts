/**
 * `private` mode through TLS with the real docker daemon and skopeo: every client must log in,
 * and works once logged in — with the token flow (default) and with plain Basic challenges.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startDockerd, type Dockerd } from '../harness/dockerd.js';
import { makeOciImage, toDockerArchive, type OciImage } from '../harness/oci-image.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { skopeoCopy } from '../harness/skopeo.js';
import { startTlsStack, type TlsStack } from '../harness/stack.js';
import { addLoopbackName, type LoopbackName } from '../harness/hosts.js';
import { makeTempDir, removeTempDir } from '../harness/tmp.js';

const USERS = { alice: 'wonderland-42' };
let dockerd: Dockerd;
let registry: Registry;
let image: OciImage;
let localRef: string;
let work: string;
const names: Partial<Record<'token' | 'basic', LoopbackName>> = {};

before(async () => {
  work = await makeTempDir('clients-private');
  names.token = await addLoopbackName();
  names.basic = await addLoopbackName();
  image = await makeOciImage(path.join(work, 'image'), { layerBytes: 512 * 1024 });
  [dockerd, registry, localRef] = await Promise.all([startDockerd(), startRegistry(), toDockerArchive(image, path.join(work, 'image.tar'), 'local/app:1')]);
  await dockerd.docker(['load', '-i', path.join(work, 'image.tar')]);
});

after(async () => {
  await dockerd?.stop();
  await registry?.stop();
  if (work) await removeTempDir(work);
  for (const entry of Object.values(names)) await entry.remove();
});

function pushedDigest(stdout: string): string {
  const m = /digest: (sha256:[0-9a-f]{64})/.exec(stdout);
  assert.ok(m, `no digest in docker push output:\n${stdout}`);
  return m[1]!;
}

for (const challenge of ['token', 'basic'] as const) {
  describe(`private mode, ${challenge} challenge`, () => {
    let stack: TlsStack;

    before(async () => {
      stack = await startTlsStack({ auth: { mode: 'private', challenge }, users: USERS, registry, hostsEntry: names[challenge] });
    });
    after(async () => {
      await dockerd?.untrustCa(stack.host).catch(() => {});
      await stack?.stop();
    });

    test('docker verifies the proxy certificate, and trusts it once given the CA', async () => {
      const untrusted = await dockerd.login(stack.host, 'alice', USERS.alice, { allowFail: true });
      assert.notEqual(untrusted.code, 0);
      assert.match(untrusted.stderr, /x509|certificate/i);
      await dockerd.trustCa(stack.host, stack.caPem);
    });

    test('docker login with a wrong password fails', async () => {
      const res = await dockerd.login(stack.host, 'alice', 'not-the-password', { allowFail: true });
      assert.notEqual(res.code, 0, res.stdout);
      assert.match(res.stderr, /unauthorized|401/i);
      const unknown = await dockerd.login(stack.host, 'mallory', 'whatever', { allowFail: true });
      assert.notEqual(unknown.code, 0);
    });

    test('docker login, push, rmi, pull round-trips with the same digest', async () => {
      const login = await dockerd.login(stack.host, 'alice', USERS.alice);
      assert.match(login.stdout, /Login Succeeded/);
      const remote = `${stack.host}/private/${challenge}/app:1`;
      await dockerd.docker(['tag', localRef, remote]);
      const digest = pushedDigest((await dockerd.docker(['push', remote])).stdout);
      await dockerd.docker(['rmi', remote]);
      await dockerd.docker(['pull', remote]);
      const inspect = await dockerd.docker(['image', 'inspect', '--format', '{{json .RepoDigests}}', remote]);
      assert.ok((JSON.parse(inspect.stdout) as string[]).includes(`${stack.host}/private/${challenge}/app@${digest}`), inspect.stdout);
    });

    test('docker without login cannot pull', async () => {
      await dockerd.docker(['logout', stack.host]);
      const remote = `${stack.host}/private/${challenge}/app:1`;
      await dockerd.docker(['rmi', remote]);
      const res = await dockerd.docker(['pull', remote], { allowFail: true });
      assert.notEqual(res.code, 0);
      assert.match(res.stderr, /unauthorized|no basic auth credentials|authentication required/i);
    });

    test('skopeo pushes and pulls with credentials; without them it gets "unauthorized"', async () => {
      const dest = `docker://${stack.host}/private/${challenge}/skopeo:1`;
      const pushed = await skopeoCopy(image.ociRef, dest, { destCreds: { user: 'alice', pass: USERS.alice }, certDir: stack.certDir });
      assert.equal(pushed.digest, image.manifestDigest);
      const back = path.join(work, `back-${challenge}`);
      const pulled = await skopeoCopy(dest, `oci:${back}:copy`, { srcCreds: { user: 'alice', pass: USERS.alice }, certDir: stack.certDir });
      assert.equal(pulled.code, 0, pulled.stderr);

      const anonymousPush = await skopeoCopy(image.ociRef, `docker://${stack.host}/private/${challenge}/anon:1`, { destCreds: 'anonymous', certDir: stack.certDir, allowFail: true });
      assert.notEqual(anonymousPush.code, 0);
      assert.match(anonymousPush.stderr, /authentication required|403 \(Forbidden\)/i);
      const anonymousPull = await skopeoCopy(dest, `oci:${back}-anon:copy`, { srcCreds: 'anonymous', certDir: stack.certDir, allowFail: true });
      assert.notEqual(anonymousPull.code, 0);
      assert.match(anonymousPull.stderr, /unauthorized|authentication required/i);
      const wrong = await skopeoCopy(dest, `oci:${back}-wrong:copy`, { srcCreds: { user: 'alice', pass: 'nope' }, certDir: stack.certDir, allowFail: true });
      assert.notEqual(wrong.code, 0);
      assert.match(wrong.stderr, /unauthorized/i);
    });

    test('the proxy logged the users, never their passwords', () => {
      const logs = JSON.stringify(stack.proxy.logs());
      assert.ok(!logs.includes(USERS.alice), 'a password reached the log');
      assert.ok(stack.proxy.logs().some((l) => l.msg === 'request' && l.user === 'alice'));
    });
  });
}
