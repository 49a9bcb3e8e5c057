/**
 * The access rules of SPEC.md with real docker, podman, skopeo and ctr through TLS: who may push
 * where, what anonymous callers may pull, protected tags, the filtered catalog and the audit
 * trail of a real push.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import path from 'node:path';
import { readFile, writeFile } from 'node:fs/promises';
import type { AccessRuleConfig } from '../../src/config/types.js';
import { startDockerd, type Dockerd } from '../harness/dockerd.js';
import { addLoopbackName, type LoopbackName } from '../harness/hosts.js';
import { startContainersTool, startCtr, type ImageTool } from '../harness/image-tools.js';
import { makeOciImage, toDockerArchive, type OciImage } from '../harness/oci-image.js';
import { run, waitUntil } from '../harness/process.js';
import { curl as curlWithCa } from '../harness/curl.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { skopeo, skopeoCopy } from '../harness/skopeo.js';
import { startTlsStack, type TlsStack } from '../harness/stack.js';
import { makeTempDir, removeTempDir } from '../harness/tmp.js';

const USERS = { alice: 'alice-in-team-a', root: 'root-of-all' };
const ALICE = { user: 'alice', pass: USERS.alice };
const ROOT = { user: 'root', pass: USERS.root };
/** A refusal must reach the user quickly; a client that retries or hangs fails this. */
const FAST_MS = 10_000;

const RULES: AccessRuleConfig[] = [
  { who: ['group:admins'], repositories: ['**'], actions: ['*'] },
  { who: ['authenticated'], repositories: ['${user}/**'], actions: ['pull', 'push', 'delete'] },
  { who: ['group:team-a'], repositories: ['team-a/**'], actions: ['pull', 'push'] },
  { who: ['*'], repositories: ['public/**'], actions: ['pull'] },
];

describe('access rules with real clients', () => {
  let dockerd: Dockerd;
  let registry: Registry;
  let stack: TlsStack;
  let hostsEntry: LoopbackName;
  let tools: ImageTool[] = [];
  let work: string;
  let auditFile: string;
  let imageA: OciImage;
  let imageB: OciImage;
  let imageC: OciImage;
  let imageD: OciImage;
  let caFile: string;

  before(async () => {
    work = await makeTempDir('access-rules');
    auditFile = path.join(work, 'audit.jsonl');
    const groupsFile = path.join(work, 'htgroup');
    await writeFile(groupsFile, '# from the operator\nteam-a: alice\n');
    hostsEntry = await addLoopbackName();
    [imageA, imageB, imageC, imageD] = await Promise.all([
      makeOciImage(path.join(work, 'a'), { layerBytes: 64 * 1024, layers: 3 }),
      makeOciImage(path.join(work, 'b'), { layerBytes: 64 * 1024 }),
      makeOciImage(path.join(work, 'c'), { layerBytes: 64 * 1024, layers: 3 }),
      makeOciImage(path.join(work, 'd'), { layerBytes: 16 * 1024 }),
    ]);
    [dockerd, registry] = await Promise.all([startDockerd(), startRegistry()]);
    await toDockerArchive(imageA, path.join(work, 'a.tar'), 'local/a:1');
    await toDockerArchive(imageC, path.join(work, 'c.tar'), 'local/c:1');
    await dockerd.docker(['load', '-i', path.join(work, 'a.tar')]);
    await dockerd.docker(['load', '-i', path.join(work, 'c.tar')]);
    stack = await startTlsStack({
      auth: { mode: 'private', challenge: 'token' },
      users: USERS,
      registry,
      hostsEntry,
      extra: {
        access: RULES,
        groups: { admins: ['root'] },
        groupsFile,
        protectedTags: [{ repositories: ['**'], tags: ['v*'], who: ['group:admins'] }],
        audit: { file: auditFile },
      },
    });
    await dockerd.trustCa(stack.host, stack.caPem);
    caFile = path.join(stack.certDir, 'ca.crt');
    tools = await Promise.all([startContainersTool('podman'), startCtr(dockerd)]);
    // What exists before the tests: a public base, another team's repository.
    await skopeoCopy(imageB.ociRef, `docker://${stack.host}/public/base:1`, { destCreds: ROOT, certDir: stack.certDir });
    await skopeoCopy(imageB.ociRef, `docker://${stack.host}/team-b/app:1`, { destCreds: ROOT, certDir: stack.certDir });
    // A blob that only team-b/app holds.
    await skopeoCopy(imageD.ociRef, `docker://${stack.host}/team-b/app:d`, { destCreds: ROOT, certDir: stack.certDir });
  });

  after(async () => {
    for (const tool of tools) await tool.stop().catch(() => {});
    await dockerd?.untrustCa(stack?.host ?? '').catch(() => {});
    await dockerd?.stop();
    await stack?.stop();
    await registry?.stop();
    await hostsEntry?.remove();
    if (work) await removeTempDir(work);
  });

  const curl = (url: string, creds: { user: string; pass: string } | null, ...extra: string[]) => curlWithCa(caFile, url, creds, ...extra);

  test('alice (group team-a) pushes to team-a/app and alice/tool with docker, skopeo, podman and ctr; team-b/app is refused at once, clearly', async () => {
    await dockerd.login(stack.host, ALICE.user, ALICE.pass);
    const docker = async (dest: string) => {
      await dockerd.docker(['tag', 'local/a:1', dest]);
      return dockerd.docker(['push', dest], { allowFail: true, timeoutMs: 60_000 });
    };
    const pushers: [string, (repo: string, tag: string) => Promise<{ code: number | null; stderr: string; durationMs: number }>][] = [
      ['docker', (repo, tag) => docker(`${stack.host}/${repo}:${tag}`)],
      ['skopeo', (repo, tag) => skopeoCopy(imageA.ociRef, `docker://${stack.host}/${repo}:${tag}`, { destCreds: ALICE, certDir: stack.certDir, allowFail: true, timeoutMs: 60_000 })],
      ...tools.map((tool): [string, (repo: string, tag: string) => ReturnType<ImageTool['push']>] => [
        tool.name,
        (repo, tag) => tool.push(imageA, `${stack.host}/${repo}:${tag}`, { creds: ALICE, certDir: stack.certDir }),
      ]),
    ];
    for (const [client, push] of pushers) {
      for (const repo of ['team-a/app', 'alice/tool']) {
        const ok = await push(repo, client);
        assert.equal(ok.code, 0, `${client} → ${repo}: ${ok.stderr}`);
      }
      const refused = await push('team-b/app', client);
      assert.notEqual(refused.code, 0, `${client} pushed to team-b/app`);
      assert.ok(refused.durationMs < FAST_MS, `${client} took ${refused.durationMs} ms to give up: ${refused.stderr}`);
      // containers/image reads only the status of its first blob HEAD (a HEAD has no body);
      // containerd 1.6 prints the status of any refusal, never its body.
      const expected: Record<string, RegExp> = {
        docker: /denied: user "alice" may not push to team-b\/app/,
        skopeo: /failed to read from destination repository team-b\/app: 403 \(Forbidden\)/,
        podman: /failed to read from destination repository team-b\/app: 403 \(Forbidden\)/,
        ctr: /unexpected status: 403 Forbidden/,
      };
      assert.match(refused.stderr, expected[client]!, `${client}: ${refused.stderr}`);
    }
    await dockerd.docker(['logout', stack.host]);
  });

  test('anonymous callers pull public/** and nothing else, with docker and skopeo', async () => {
    await dockerd.docker(['logout', stack.host]);
    const pulled = await skopeoCopy(`docker://${stack.host}/public/base:1`, `oci:${path.join(work, 'anon-pull')}:x`, { srcCreds: 'anonymous', certDir: stack.certDir });
    assert.equal(pulled.code, 0, pulled.stderr);
    const dockerPull = await dockerd.docker(['pull', `${stack.host}/public/base:1`], { allowFail: true });
    assert.equal(dockerPull.code, 0, dockerPull.stderr);

    const closed = await skopeoCopy(`docker://${stack.host}/team-b/app:1`, `oci:${path.join(work, 'anon-closed')}:x`, { srcCreds: 'anonymous', certDir: stack.certDir, allowFail: true });
    assert.notEqual(closed.code, 0);
    assert.match(closed.stderr, /authentication required to pull from team-b\/app/);
    const dockerClosed = await dockerd.docker(['pull', `${stack.host}/team-b/app:1`], { allowFail: true });
    assert.notEqual(dockerClosed.code, 0);
    assert.match(dockerClosed.stderr, /authentication required to pull from team-b\/app/);
  });

  test('a protected v1 tag cannot be moved to another digest or deleted; the same digest can be re-pushed', async () => {
    const v1 = `docker://${stack.host}/team-a/app:v1`;
    const first = await skopeoCopy(imageA.ociRef, v1, { destCreds: ALICE, certDir: stack.certDir });
    assert.equal(first.digest, imageA.manifestDigest);

    const moved = await skopeoCopy(imageB.ociRef, v1, { destCreds: ALICE, certDir: stack.certDir, allowFail: true });
    assert.notEqual(moved.code, 0);
    assert.match(moved.stderr, /tag \\"v1\\" of team-a\/app is protected|tag "v1" of team-a\/app is protected/);

    await dockerd.login(stack.host, ALICE.user, ALICE.pass);
    await dockerd.docker(['tag', 'local/c:1', `${stack.host}/team-a/app:v1`]);
    const dockerMove = await dockerd.docker(['push', `${stack.host}/team-a/app:v1`], { allowFail: true, timeoutMs: 60_000 });
    assert.notEqual(dockerMove.code, 0);
    assert.match(dockerMove.stderr, /denied: tag "v1" of team-a\/app is protected/);
    await dockerd.docker(['logout', stack.host]);

    const again = await skopeoCopy(imageA.ociRef, v1, { destCreds: ALICE, certDir: stack.certDir });
    assert.equal(again.code, 0, again.stderr);

    const deleted = await skopeo(['delete', '--cert-dir', stack.certDir, '--creds', `${ALICE.user}:${ALICE.pass}`, `docker://${stack.host}/team-a/app@${imageA.manifestDigest}`], { redact: [ALICE.pass] });
    assert.notEqual(deleted.code, 0);
    assert.match(deleted.stderr, /protected tag \\?"v1\\?"|403|denied/);
    const still = await curl(`${stack.url}/v2/team-a/app/manifests/v1`, ROOT, '-I', '-H', 'Accept: application/vnd.oci.image.manifest.v1+json');
    assert.equal(still.status, 200);
    assert.match(still.head, new RegExp(`docker-content-digest: ${imageA.manifestDigest}`, 'i'));
  });

  test("a protected index protects its platform manifests and their blobs: alice may not delete them, root may", async () => {
    // alice may delete in alice/**; the protection of v* binds her there too.
    for (const [image, tag] of [[imageA, 'a'], [imageC, 'c']] as const) {
      await skopeoCopy(image.ociRef, `docker://${stack.host}/alice/idx:${tag}`, { destCreds: ALICE, certDir: stack.certDir });
    }
    const index = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [imageA, imageC].map((image) => ({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: image.manifestDigest, size: image.manifestSize, platform: { architecture: 'amd64', os: 'linux' } })),
    });
    const indexFile = path.join(work, 'index.json');
    await writeFile(indexFile, index);
    const put = await curl(`${stack.url}/v2/alice/idx/manifests/v2`, ALICE, '-X', 'PUT', '-H', 'Content-Type: application/vnd.oci.image.index.v1+json', '--data-binary', `@${indexFile}`);
    assert.equal(put.status, 201, put.body);

    const del = (creds: { user: string; pass: string }, what: string) => curl(`${stack.url}/v2/alice/idx/${what}`, creds, '-X', 'DELETE');
    const child = await del(ALICE, `manifests/${imageC.manifestDigest}`);
    assert.equal(child.status, 403, child.body);
    assert.match(child.body, /is a platform manifest of the protected tag \\"v2\\" of alice\/idx/);
    const layer = await del(ALICE, `blobs/${imageC.layerDigests[1]}`);
    assert.equal(layer.status, 403, layer.body);
    assert.match(layer.body, /is a blob of the protected tag/);
    const inspect = await skopeo(['inspect', '--raw', '--cert-dir', stack.certDir, '--creds', `${ROOT.user}:${ROOT.pass}`, `docker://${stack.host}/alice/idx@${imageC.manifestDigest}`], { redact: [ROOT.pass] });
    assert.equal(inspect.code, 0, 'the platform manifest is still there');

    const byRoot = await del(ROOT, `manifests/${imageC.manifestDigest}`);
    assert.equal(byRoot.status, 202, byRoot.body);
  });

  test('path tricks and cross-repository mounts cannot reach a repository a rule denies; what is authorized is what the registry gets', async () => {
    const manifest = await readFile(path.join(imageB.layoutDir, 'blobs', 'sha256', imageB.manifestDigest.slice('sha256:'.length)));
    const manifestFile = path.join(work, 'manifest.json');
    await writeFile(manifestFile, manifest);
    const put = (rawPath: string, creds: { user: string; pass: string } | null, ...extra: string[]) =>
      curl(`${stack.url}${rawPath}`, creds, '--path-as-is', '-X', 'PUT', '-H', 'Content-Type: application/vnd.oci.image.manifest.v1+json', '--data-binary', `@${manifestFile}`, ...extra);
    const tricks = [
      '/v2/team-b/./app/manifests/evil1',
      '/v2/team-a/../team-b/app/manifests/evil2',
      '/v2/x/../team-b/app/manifests/evil3',
      '/v2/team-a/%2e%2e/team-b/app/manifests/evil4',
      '/v2/team-b/%2e/app/manifests/evil5',
      '/v2/team-b%2fapp/manifests/evil6',
      '/v2/team-b\\app/manifests/evil7',
      '/v2/team-b//app/manifests/evil8',
      '/v2/TEAM-B/app/manifests/evil9',
    ];
    for (const trick of tricks) {
      const answer = await put(trick, ALICE);
      assert.equal(answer.status, 403, `${trick}: ${answer.status} ${answer.body}`);
    }
    // curl never sends a fragment; Node's client sends the path as given.
    const fragment = await new Promise<number>((resolve, reject) => {
      const req = https.request(
        { host: '::1', port: Number(stack.host.split(':').pop()), servername: hostsEntry.name, ca: stack.caPem, method: 'PUT', path: '/v2/team-a/app/manifests/evil10#/../../../team-b/app/manifests/evil10', headers: { host: stack.host, authorization: `Basic ${Buffer.from(`${ALICE.user}:${ALICE.pass}`).toString('base64')}`, 'content-type': 'application/vnd.oci.image.manifest.v1+json' } },
        (res) => {
          res.resume();
          resolve(res.statusCode!);
        },
      );
      req.on('error', reject);
      req.end(manifest);
    });
    assert.equal(fragment, 403);
    // Forwarded as it came even for an admin: the registry does not read `.` as its router would
    // after new URL(), so no tag appears through an unnormalised path.
    for (const trick of ['/v2/team-b/./app/manifests/admin1', '/v2/x/../team-b/app/manifests/admin2']) {
      const answer = await put(trick, ROOT);
      assert.ok(answer.status >= 300, `${trick} as root: ${answer.status}`);
    }
    const tags = JSON.parse((await curl(`${stack.url}/v2/team-b/app/tags/list`, ROOT)).body) as { tags: string[] };
    assert.deepEqual(tags.tags.sort(), ['1', 'd'], 'no tag reached team-b/app');

    const secretBlob = imageD.layerDigest;
    const mount = await curl(`${stack.url}/v2/alice/tool/blobs/uploads/?mount=${secretBlob}&from=team-b/app`, ALICE, '-X', 'POST', '-H', 'Content-Length: 0');
    assert.equal(mount.status, 403, mount.body);
    assert.match(mount.body, /may not pull from team-b\/app/);
    const copied = await curl(`${stack.url}/v2/alice/tool/blobs/${secretBlob}`, ROOT, '-I');
    assert.equal(copied.status, 404, 'the blob was mounted into alice/tool');

    // The registry reads `mount` and `from` from an urlencoded body too, and lets it win.
    const formMount = (creds: { user: string; pass: string }, target: string, query: string, body: string) =>
      curl(`${stack.url}/v2/${target}/blobs/uploads/${query}`, creds, '-X', 'POST', '-H', 'Content-Type: application/x-www-form-urlencoded', '--data-binary', body);
    const viaBody = await formMount(ALICE, 'alice/stolen', '', `mount=${secretBlob}&from=team-b/app`);
    assert.equal(viaBody.status, 403, viaBody.body);
    assert.match(viaBody.body, /may not pull from team-b\/app/);
    const conflicting = await formMount(ALICE, 'alice/stolen', `?mount=${secretBlob}&from=alice/stolen`, 'from=team-b/app');
    assert.equal(conflicting.status, 403, conflicting.body);
    assert.equal((await curl(`${stack.url}/v2/alice/stolen/blobs/${secretBlob}`, ROOT, '-I')).status, 404, 'the secret blob was mounted into alice/stolen');
    const audited = (await readFile(auditFile, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const refusedMounts = audited.filter((l) => l.action === 'mount' && l.repository === 'alice/stolen');
    assert.deepEqual(refusedMounts.map((l) => [l.user, l.from, l.digest, l.status]), [
      ['alice', 'team-b/app', secretBlob, 403],
      ['alice', 'team-b/app', secretBlob, 403],
    ]);
    // Where the rules allow it, the form is forwarded as read and the registry mounts from it.
    const allowed = await formMount(ROOT, 'root/copy', '', `mount=${secretBlob}&from=team-b/app`);
    assert.equal(allowed.status, 201, allowed.body);
    assert.equal((await curl(`${stack.url}/v2/root/copy/blobs/${secretBlob}`, ROOT, '-I')).status, 200);
  });

  test("alice's catalog lists only what she may pull, page by page", async () => {
    const seen: string[] = [];
    let next: string | null = '/v2/_catalog?n=1';
    for (let pages = 0; next && pages < 20; pages++) {
      const page = await curl(`${stack.url}${next}`, ALICE);
      assert.equal(page.status, 200, page.body);
      const body = JSON.parse(page.body) as { repositories: string[] };
      assert.ok(body.repositories.length <= 1);
      seen.push(...body.repositories);
      next = /^link: <([^>]+)>; rel="next"/im.exec(page.head)?.[1] ?? null;
    }
    assert.deepEqual(seen, ['alice/idx', 'alice/tool', 'public/base', 'team-a/app']);
    const all = JSON.parse((await curl(`${stack.url}/v2/_catalog`, ROOT)).body) as { repositories: string[] };
    assert.ok(all.repositories.includes('team-b/app'), 'root sees everything');
  });

  test('the audit log answers who pushed which digest to which tag, from where, for a real docker push', async () => {
    await dockerd.login(stack.host, ALICE.user, ALICE.pass);
    const dest = `${stack.host}/alice/audited:1`;
    await dockerd.docker(['tag', 'local/c:1', dest]);
    const push = await dockerd.docker(['push', dest]);
    const digest = /digest: (sha256:[0-9a-f]{64})/.exec(push.stdout)?.[1];
    assert.ok(digest, push.stdout);
    await dockerd.docker(['logout', stack.host]);

    // Audit lines are appended asynchronously, right after each answer.
    const pushed = async () => (await readFile(auditFile, 'utf8')).split('\n').some((l) => l.includes('"action":"push"') && l.includes('"repository":"alice/audited"'));
    await waitUntil(pushed, { timeoutMs: 5_000, what: 'the audit line of the push' });
    const query = 'select(.event == "change" and .action == "push" and .repository == "alice/audited") | [.user, .repository, .tag, .digest, .client, .status] | @tsv';
    const answer = await run('jq', ['-r', query, auditFile], { check: true });
    assert.equal(answer.stdout.trim(), ['alice', 'alice/audited', '1', digest, '::1', '201'].join('\t'));

    const lines = (await readFile(auditFile, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    // Three layers and a config, each uploaded or mounted from team-a/app (where the refused v1
    // push left them); docker recompresses the layers it loaded, so their digests are its own.
    const uploads = lines.filter((l) => l.repository === 'alice/audited' && (l.action === 'upload' || l.action === 'mount') && l.status === 201);
    assert.equal(new Set(uploads.map((l) => l.digest)).size, 4, JSON.stringify(uploads));
    for (const mount of uploads.filter((l) => l.action === 'mount')) assert.equal(mount.from, 'team-a/app');
    for (const line of uploads) assert.match(String(line.digest), /^sha256:[0-9a-f]{64}$/);
    // The access log counts a small manifest PUT's body, which arrives in the same read as its headers.
    // Log lines are written in batches, at the latest 250 ms after the request.
    const manifestPut = await stack.proxy.waitForLog((l) => l.msg === 'request' && l.method === 'PUT' && l.path === '/v2/alice/audited/manifests/1' && l.status === 201, 5_000);
    assert.ok(Number(manifestPut.bytesIn) > 500, `bytesIn ${String(manifestPut.bytesIn)}`);

    const refused = lines.filter((l) => l.repository === 'team-b/app' && l.status === 403);
    assert.ok(refused.length > 0, 'refused pushes are in the audit log too');
    assert.ok(!JSON.stringify(lines).includes(USERS.alice), 'a password reached the audit log');
  });
});
