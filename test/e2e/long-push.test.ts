/**
 * Pushes that outlast their token: `auth.tokenTtlSeconds: 10` (tokens then live the 60 s the
 * token specification asks at least) and a 200 MiB layer sent at 3 MB/s (about 70 s) by docker,
 * skopeo, podman and ctr at once, each through a relay that slows what it sends. Every push must
 * commit: the manifest is in the registry afterwards. Before the upload session's grace, docker,
 * skopeo and podman failed at the blob's final PUT (token expired); ctr fetches a new one on 401.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startDockerd, type Dockerd } from '../harness/dockerd.js';
import { addLoopbackName, type LoopbackName } from '../harness/hosts.js';
import { startContainersTool, startCtr, type ImageTool } from '../harness/image-tools.js';
import { makeOciImage, toDockerArchive, type OciImage } from '../harness/oci-image.js';
import { skopeoCopy } from '../harness/skopeo.js';
import { startTlsStack, type TlsStack } from '../harness/stack.js';
import { startThrottle, type Throttle } from '../harness/throttle.js';
import { makeTempDir, removeTempDir } from '../harness/tmp.js';
import { request } from '../harness/registry-client.js';

const ALICE = { user: 'alice', pass: 'alice-long-push' };
const TTL_SECONDS = 10;
const LAYER_BYTES = 200 * 1024 * 1024;
const BYTES_PER_SECOND = 3 * 1000 * 1000;
/** What a token lives with tokenTtlSeconds 10 (MIN_TOKEN_SECONDS): the pushes must outlast it. */
const TOKEN_LIFETIME_SECONDS = 60;
const CLIENTS = ['docker', 'skopeo', 'podman', 'ctr'] as const;

describe('pushes that outlast their token', () => {
  let dockerd: Dockerd;
  let stack: TlsStack;
  let hostsEntry: LoopbackName;
  let podman: ImageTool;
  let ctr: ImageTool;
  let work: string;
  const images = new Map<string, OciImage>();
  const throttles = new Map<string, Throttle>();

  before(async () => {
    work = await makeTempDir('long-push');
    hostsEntry = await addLoopbackName();
    dockerd = await startDockerd();
    // One image per client: a blob one client pushed could otherwise be mounted by the next.
    await Promise.all(CLIENTS.map(async (client, i) => images.set(client, await makeOciImage(path.join(work, client), { layerBytes: LAYER_BYTES, seed: 4242 + i }))));
    await toDockerArchive(images.get('docker')!, path.join(work, 'docker.tar'), 'local/long:1');
    await dockerd.docker(['load', '-i', path.join(work, 'docker.tar')], { timeoutMs: 300_000 });
    stack = await startTlsStack({ auth: { mode: 'private', challenge: 'token', tokenTtlSeconds: TTL_SECONDS }, users: { alice: ALICE.pass }, hostsEntry });
    for (const client of CLIENTS) {
      const throttle = await startThrottle({ host: '::1', port: stack.proxy.port }, BYTES_PER_SECOND);
      throttles.set(client, throttle);
      await dockerd.trustCa(`${hostsEntry.name}:${throttle.port}`, stack.caPem);
    }
    podman = await startContainersTool('podman');
    ctr = await startCtr(dockerd);
  });

  after(async () => {
    for (const t of throttles.values()) await t.close();
    await podman?.stop().catch(() => {});
    await ctr?.stop().catch(() => {});
    for (const t of throttles.values()) await dockerd?.untrustCa(`${hostsEntry.name}:${t.port}`).catch(() => {});
    await dockerd?.stop();
    await stack?.stop();
    await hostsEntry?.remove();
    if (work) await removeTempDir(work);
  });

  test('docker, skopeo, podman and ctr each commit a 200 MiB push lasting several token lifetimes', async () => {
    const host = (client: string) => `${hostsEntry.name}:${throttles.get(client)!.port}`;
    const push = async (client: (typeof CLIENTS)[number]) => {
      const dest = `${host(client)}/long/${client}:1`;
      const image = images.get(client)!;
      const started = Date.now();
      let result: { code: number | null; stderr: string };
      if (client === 'docker') {
        const login = await dockerd.login(host(client), ALICE.user, ALICE.pass);
        assert.equal(login.code, 0, login.stderr);
        await dockerd.docker(['tag', 'local/long:1', dest]);
        result = await dockerd.docker(['push', dest], { allowFail: true, timeoutMs: 300_000 });
      } else if (client === 'skopeo') {
        result = await skopeoCopy(image.ociRef, `docker://${dest}`, { destCreds: ALICE, certDir: stack.certDir, allowFail: true, timeoutMs: 300_000 });
      } else {
        result = await (client === 'podman' ? podman : ctr).push(image, dest, { creds: ALICE, certDir: stack.certDir, timeoutMs: 300_000 });
      }
      return { client, code: result.code, stderr: result.stderr, seconds: (Date.now() - started) / 1000 };
    };
    const results = await Promise.all(CLIENTS.map(push));
    const failed = results.filter((r) => r.code !== 0).map((r) => `${r.client} failed after ${r.seconds} s: ${r.stderr.slice(-1500)}`);
    assert.deepEqual(failed, [], `of ${results.map((r) => `${r.client} ${r.code === 0 ? 'ok' : 'FAILED'} in ${r.seconds} s`).join(', ')}`);
    for (const r of results) {
      assert.ok(r.seconds > TOKEN_LIFETIME_SECONDS + 5, `${r.client} took ${r.seconds} s: not long enough to outlast its token`);
      const manifest = await request(`${stack.registry.url}/v2/long/${r.client}/manifests/1`, {
        method: 'HEAD',
        headers: { accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' },
      });
      assert.equal(manifest.status, 200, `${r.client}: the manifest is in the registry`);
    }
  });
});
