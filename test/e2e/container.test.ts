/**
 * The container image and the compose example, run: the image built from the Dockerfile (on a
 * Debian-made base, as none can be pulled here) in front of the real registry with host
 * networking, driven by the real docker and skopeo; then deploy/docker-compose.yml with an
 * override for host networking and free ports, its registry being a `registry:2` made from
 * Debian's docker-registry. The image runs Node 24 (the current LTS, the Dockerfile's default base)
 * where the host runs 20: that is how a Node 22 change in corked chunked requests, which cut
 * docker's uploads short, was found.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { startDockerd, type Dockerd } from '../harness/dockerd.js';
import { addLoopbackName, type LoopbackName } from '../harness/hosts.js';
import { makeOciImage, toDockerArchive, type OciImage } from '../harness/oci-image.js';
import { freePort } from '../harness/ports.js';
import { run, waitUntil } from '../harness/process.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { makeCertDir, skopeoCopy } from '../harness/skopeo.js';
import { get } from '../harness/registry-client.js';
import { makeTempDir, removeTempDir } from '../harness/tmp.js';
import { buildProjectImage, buildRegistryImage, importBase } from '../harness/container-images.js';

const GATE_IMAGE = 'registry-gate:test';
const ALICE = { user: 'alice', pass: 'container-pass-1' };
const COMPOSE_FILE = path.resolve(import.meta.dirname, '..', '..', 'deploy', 'docker-compose.yml');

describe('the container image and the compose example', () => {
  let dockerd: Dockerd;
  let registry: Registry;
  let names: LoopbackName[] = [];
  let image: OciImage;
  let localRef: string;
  let work: string;

  const health = async (container: string) => (await dockerd.docker(['inspect', '--format', '{{.State.Health.Status}}', container])).stdout.trim();
  const waitHealthy = (container: string) =>
    waitUntil(async () => (await health(container)) === 'healthy', { timeoutMs: 90_000, intervalMs: 500, what: `${container} to report healthy` });

  before(
    async () => {
      work = await makeTempDir('container');
      names = [await addLoopbackName('gate'), await addLoopbackName('compose')];
      image = await makeOciImage(path.join(work, 'image'), { layerBytes: 512 * 1024 });
      [dockerd, registry, localRef] = await Promise.all([startDockerd(), startRegistry(), toDockerArchive(image, path.join(work, 'image.tar'), 'local/app:1')]);
      await dockerd.docker(['load', '-i', path.join(work, 'image.tar')]);
      await importBase(dockerd);
      await buildRegistryImage(dockerd);
      await buildProjectImage(dockerd, GATE_IMAGE);
    },
    { timeout: 1_500_000 },
  );

  after(async () => {
    await dockerd?.stop();
    await registry?.stop();
    for (const n of names) await n.remove();
    if (work) await removeTempDir(work);
  });

  test('the image serves docker and skopeo, adds users by docker exec, checks its health, keeps its state over a restart', async (t) => {
    const port = await freePort();
    const host = `${names[0]!.name}:${port}`;
    const container = 'rg-gate';
    await dockerd.docker([
      'run', '-d', '--name', container, '--network', 'host', '--health-interval', '1s',
      '-v', 'rg-gate-data:/app/data', '-v', 'rg-gate-auth:/app/auth',
      '-e', `REGGATE_LISTEN=[::]:${port}`, '-e', `REGGATE_UPSTREAM=${registry.url}`,
      '-e', `REGGATE_TLS_NAMES=${names[0]!.name},localhost`, '-e', 'REGGATE_AUTH_MODE=read-public',
      GATE_IMAGE,
    ]);
    t.after(async () => {
      await dockerd.untrustCa(host).catch(() => {});
      await dockerd.docker(['rm', '-f', '-v', container], { allowFail: true });
      await dockerd.docker(['volume', 'rm', 'rg-gate-data', 'rg-gate-auth'], { allowFail: true });
    });
    await waitHealthy(container);

    // The image's own check, run as the image runs it.
    const checked = await dockerd.docker(['exec', container, 'registry-gate', 'health', '--config', '/app/proxy.config.json'], { allowFail: true });
    assert.equal(checked.code, 0, checked.stdout + checked.stderr);
    assert.match(checked.stdout, new RegExp(`https://\\[::1\\]:${port}/healthz answered 200`));

    const added = await dockerd.docker(['exec', '-i', container, 'registry-gate', 'passwd', 'add', ALICE.user, '--password-stdin'], { stdin: `${ALICE.pass}\n`, allowFail: true });
    assert.equal(added.code, 0, added.stderr);

    const ca = (await dockerd.docker(['exec', container, 'cat', '/app/data/tls/self-signed-cert.pem'])).stdout;
    assert.match(ca, /^-----BEGIN CERTIFICATE-----/);
    await dockerd.trustCa(host, ca);
    const certDir = await makeCertDir(ca);
    t.after(() => removeTempDir(certDir));

    await waitUntil(async () => (await dockerd.login(host, ALICE.user, ALICE.pass, { allowFail: true })).code === 0, {
      timeoutMs: 15_000,
      what: 'docker login with the user added by docker exec (the htpasswd file is re-read)',
    });
    const remote = `${host}/team/app:1`;
    await dockerd.docker(['tag', localRef, remote]);
    const pushed = await dockerd.docker(['push', remote], { allowFail: true, timeoutMs: 120_000 });
    assert.equal(pushed.code, 0, pushed.stderr);
    // docker pushes the image as a schema-2 manifest of its own making: its digest is docker's.
    const digest = /digest: (sha256:[0-9a-f]{64})/.exec(pushed.stdout)?.[1];
    assert.ok(digest, pushed.stdout);
    await dockerd.docker(['rmi', remote]);
    await dockerd.docker(['logout', host]);
    const anonymous = await dockerd.docker(['pull', remote], { allowFail: true, timeoutMs: 120_000 });
    assert.equal(anonymous.code, 0, anonymous.stderr);
    assert.match(anonymous.stdout, new RegExp(`Digest: ${digest}`));

    const viaSkopeo = await skopeoCopy(image.ociRef, `docker://${host}/team/skopeo:1`, { destCreds: ALICE, certDir });
    assert.equal(viaSkopeo.digest, image.manifestDigest);
    const refused = await skopeoCopy(image.ociRef, `docker://${host}/team/anonymous:1`, { destCreds: 'anonymous', certDir, allowFail: true });
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /unauthorized|authentication required/i);
    const pulled = await skopeoCopy(`docker://${host}/team/skopeo:1`, `oci:${path.join(work, 'pulled')}:x`, { srcCreds: 'anonymous', certDir });
    assert.equal(pulled.code, 0);

    // State on the volume: the same certificate and the same token key after a restart.
    const token = JSON.parse(
      (await get(`https://${host}/token?service=${encodeURIComponent(host)}&scope=repository:team/app:pull,push`, { ca, auth: ALICE, timeoutMs: 10_000 })).body.toString(),
    ) as { token: string };
    await dockerd.docker(['restart', container], { timeoutMs: 90_000 });
    await waitHealthy(container);
    assert.equal((await dockerd.docker(['exec', container, 'cat', '/app/data/tls/self-signed-cert.pem'])).stdout, ca);
    const after = await get(`https://${host}/v2/team/app/tags/list`, { ca, auth: { bearer: token.token }, timeoutMs: 10_000 });
    assert.equal(after.status, 200, after.body.toString());
    assert.deepEqual(JSON.parse(after.body.toString()), { name: 'team/app', tags: ['1'] });
  });

  test('the compose example runs: users added inside, the CA fetched as the README says, pushes reach its registry', async (t) => {
    const [gatePort, registryPort] = [await freePort(), await freePort()];
    const host = `${names[1]!.name}:${gatePort}`;
    const project = `rgcompose${process.pid}`;
    // Debian's docker-compose (1.29) refuses published ports beside host networking and has no way
    // for an override to drop them, so the copy under test differs from the file by exactly these lines.
    const shipped = await readFile(COMPOSE_FILE, 'utf8');
    const published = '    ports:\n      - "443:5443"\n';
    assert.equal(shipped.split(published).length, 2, 'the gate publishes 443:5443 once');
    const composeFile = path.join(work, 'deploy', 'docker-compose.yml');
    await mkdir(path.dirname(composeFile));
    await writeFile(composeFile, shipped.replace(published, ''));
    const override = path.join(work, 'docker-compose.host-network.yml');
    await writeFile(
      override,
      JSON.stringify({
        services: {
          registry: { network_mode: 'host', environment: { REGISTRY_HTTP_ADDR: `127.0.0.1:${registryPort}` } },
          gate: {
            image: GATE_IMAGE,
            network_mode: 'host',
            environment: { REGGATE_UPSTREAM: `http://127.0.0.1:${registryPort}`, REGGATE_LISTEN: `[::]:${gatePort}` },
            healthcheck: { interval: '1s' },
          },
        },
      }),
    );
    const compose = (args: string[], opts: { stdin?: string; allowFail?: boolean; timeoutMs?: number } = {}) =>
      run('docker-compose', ['-f', composeFile, '-f', override, '-p', project, ...args], {
        env: { ...dockerd.env, REGISTRY_NAMES: `${names[1]!.name},localhost` },
        stdin: opts.stdin,
        check: !opts.allowFail,
        timeoutMs: opts.timeoutMs ?? 120_000,
      });
    const up = await compose(['up', '-d', '--no-build'], { allowFail: true, timeoutMs: 180_000 });
    t.after(async () => {
      await dockerd.untrustCa(host).catch(() => {});
      await compose(['down', '-v', '--timeout', '5'], { allowFail: true });
    });
    assert.equal(up.code, 0, up.stderr);
    const gate = (await compose(['ps', '-q', 'gate'])).stdout.trim();
    await waitHealthy(gate);

    const added = await compose(['exec', '-T', 'gate', 'registry-gate', 'passwd', 'add', ALICE.user, '--password-stdin'], { stdin: `${ALICE.pass}\n`, allowFail: true });
    assert.equal(added.code, 0, added.stderr);
    const ca = (await compose(['exec', '-T', 'gate', 'cat', '/app/data/tls/self-signed-cert.pem'])).stdout;
    assert.match(ca, /^-----BEGIN CERTIFICATE-----\r?\n/);
    const certDir = await makeCertDir(ca);
    t.after(() => removeTempDir(certDir));

    // The certificate names what REGISTRY_NAMES says, so clients verify it by that name.
    assert.equal((await get(`https://${host}/v2/`, { ca, timeoutMs: 10_000 })).status, 401);
    const pushed = await skopeoCopy(image.ociRef, `docker://${host}/compose/app:1`, { destCreds: ALICE, certDir, timeoutMs: 120_000 });
    assert.equal(pushed.digest, image.manifestDigest);
    await dockerd.trustCa(host, ca);
    const anonymous = await dockerd.docker(['pull', `${host}/compose/app:1`], { allowFail: true, timeoutMs: 120_000 });
    assert.equal(anonymous.code, 0, anonymous.stderr);
    // It landed in the compose project's registry, not the test's own.
    const direct = await fetch(`http://127.0.0.1:${registryPort}/v2/compose/app/manifests/1`, { method: 'HEAD', headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
    assert.equal(direct.headers.get('docker-content-digest'), image.manifestDigest);
  });
});
