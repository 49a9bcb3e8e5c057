/**
 * An anonymous push fails fast, with a message, for every real client in every mode — also when
 * the blobs already exist and only the manifest PUT is refused, where containerd 1.6 used to
 * retry for ever after a 401 without `error=`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import type { AccessRuleConfig, AuthConfig } from '../../src/config/types.js';
import { startDockerd, type Dockerd } from '../harness/dockerd.js';
import { addLoopbackName, type LoopbackName } from '../harness/hosts.js';
import { startContainersTool, startCtr, type ImageTool } from '../harness/image-tools.js';
import { makeOciImage, toDockerArchive, type OciImage } from '../harness/oci-image.js';
import type { DeepPartial } from '../harness/proxy.js';
import type { RunResult } from '../harness/process.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { skopeoCopy } from '../harness/skopeo.js';
import { startTlsStack, type TlsStack } from '../harness/stack.js';
import { makeTempDir, removeTempDir } from '../harness/tmp.js';

const ADMIN = { user: 'admin', pass: 'admin-pass' };
const FAST_MS = 10_000;

const MODES: { name: string; auth: DeepPartial<AuthConfig>; access?: AccessRuleConfig[] }[] = [
  { name: 'private, token', auth: { mode: 'private', challenge: 'token' } },
  { name: 'read-public, token', auth: { mode: 'read-public', challenge: 'token' } },
  { name: 'read-public, basic', auth: { mode: 'read-public', challenge: 'basic' } },
  {
    name: 'private with rules, public/** anonymous pull',
    auth: { mode: 'private', challenge: 'token' },
    access: [
      { who: ['user:admin'], repositories: ['**'], actions: ['*'] },
      { who: ['*'], repositories: ['public/**'], actions: ['pull'] },
    ],
  },
];

/**
 * What each client prints (measured): docker and containers/image print the proxy's message;
 * containers/image reads only the status where its first blob HEAD is refused (a HEAD has no
 * body), containerd 1.6 only ever prints the status.
 */
function expectedMessage(client: string, mode: string): RegExp {
  if (client === 'ctr') return /unexpected status: 40[13] (Forbidden|Unauthorized)/;
  if (client === 'docker') return mode.includes('basic') ? /no basic auth credentials/ : /denied: authentication required to push to public\/app/;
  if (mode === 'private, token') return /failed to read from destination repository public\/app: 403 \(Forbidden\)/;
  return /authentication required to push to public\/app/;
}

describe('anonymous pushes fail fast for every client in every mode', () => {
  let dockerd: Dockerd;
  let registry: Registry;
  let image: OciImage;
  let work: string;
  let tools: ImageTool[] = [];
  const stacks: { name: string; stack: TlsStack; entry: LoopbackName }[] = [];

  before(async () => {
    work = await makeTempDir('anonymous-push');
    // One after the other: each rewrites /etc/hosts.
    const entries: LoopbackName[] = [];
    for (const _ of MODES) entries.push(await addLoopbackName());
    image = await makeOciImage(path.join(work, 'image'), { layerBytes: 32 * 1024 });
    [dockerd, registry] = await Promise.all([startDockerd(), startRegistry()]);
    await toDockerArchive(image, path.join(work, 'image.tar'), 'local/app:1');
    await dockerd.docker(['load', '-i', path.join(work, 'image.tar')]);
    for (const [i, mode] of MODES.entries()) {
      const stack = await startTlsStack({ auth: mode.auth, users: { [ADMIN.user]: ADMIN.pass }, registry, hostsEntry: entries[i], extra: mode.access ? { access: mode.access } : {} });
      await dockerd.trustCa(stack.host, stack.caPem);
      // The blobs exist already: an anonymous push then reaches the manifest PUT in read-public.
      await skopeoCopy(image.ociRef, `docker://${stack.host}/public/app:seed`, { destCreds: ADMIN, certDir: stack.certDir });
      stacks.push({ name: mode.name, stack, entry: entries[i]! });
    }
    tools = await Promise.all([startContainersTool('podman'), startContainersTool('buildah'), startCtr(dockerd)]);
  });

  after(async () => {
    for (const tool of tools) await tool.stop().catch(() => {});
    for (const { stack, entry } of stacks) {
      await dockerd?.untrustCa(stack.host).catch(() => {});
      await stack.stop();
      await entry.remove();
    }
    await dockerd?.stop();
    await registry?.stop();
    if (work) await removeTempDir(work);
  });

  test('docker, skopeo, podman, buildah and ctr', async () => {
    for (const { name, stack } of stacks) {
      const dest = `${stack.host}/public/app:anonymous`;
      const clients: [string, () => Promise<RunResult>][] = [
        [
          'docker',
          async () => {
            await dockerd.docker(['tag', 'local/app:1', dest]);
            return dockerd.docker(['push', dest], { allowFail: true, timeoutMs: 60_000 });
          },
        ],
        ['skopeo', () => skopeoCopy(image.ociRef, `docker://${dest}`, { destCreds: 'anonymous', certDir: stack.certDir, allowFail: true, timeoutMs: 60_000 })],
        ...tools.map((tool): [string, () => Promise<RunResult>] => [tool.name, () => tool.push(image, dest, { certDir: stack.certDir })]),
      ];
      for (const [client, push] of clients) {
        const result = await push();
        const label = `${client} in ${name}`;
        assert.notEqual(result.code, 0, `${label}: the anonymous push succeeded`);
        assert.equal(result.timedOut, false, `${label}: hung`);
        assert.ok(result.durationMs < FAST_MS, `${label}: took ${result.durationMs} ms to give up`);
        assert.match(result.stderr, expectedMessage(client, name), `${label}: ${result.stderr}`);
      }
    }
  });
});
