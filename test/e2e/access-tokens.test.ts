/**
 * Access tokens with real clients: made with the CLI as an operator types it, used as the
 * password by docker, podman and skopeo; a token narrower than its owner holds (pull-only cannot
 * push where alice may); the self-service API over HTTPS with curl; revoked, and refused at once.
 * Then two replicas sharing Redis: a token made and revoked through one is refused by the other
 * within a second, registry tokens already issued from it included.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AccessRuleConfig } from '../../src/config/types.js';
import { startDockerd, type Dockerd } from '../harness/dockerd.js';
import { addLoopbackName, type LoopbackName } from '../harness/hosts.js';
import { startContainersTool, type ImageTool } from '../harness/image-tools.js';
import { makeOciImage, toDockerArchive, type OciImage } from '../harness/oci-image.js';
import { curl as curlWithCa } from '../harness/curl.js';
import { skopeoCopy } from '../harness/skopeo.js';
import { startTlsStack, type TlsStack } from '../harness/stack.js';
import { makeTempDir, removeTempDir } from '../harness/tmp.js';
import { runProxyCli, type RunningProxy } from '../harness/proxy.js';
import { startFleet, type Fleet } from '../harness/fleet.js';
import { get, request } from '../harness/registry-client.js';
import { run } from '../harness/process.js';

const ROOT = { user: 'root', pass: 'root-password' };
const ALICE = { user: 'alice', pass: 'alice-password' };
const BOB = { user: 'bob', pass: 'bob-password' };
const RULES: AccessRuleConfig[] = [
  { who: ['group:admins'], repositories: ['**'], actions: ['*'] },
  { who: ['group:team-a'], repositories: ['team-a/**'], actions: ['pull', 'push'] },
  { who: ['authenticated'], repositories: ['${user}/**'], actions: ['pull', 'push'] },
];

describe('access tokens with real clients', () => {
  let dockerd: Dockerd;
  let stack: TlsStack;
  let hostsEntry: LoopbackName;
  let podman: ImageTool;
  let work: string;
  let image: OciImage;
  const secrets: Record<string, string> = {};

  const cli = (...args: string[]) => runProxyCli(['token', ...args, '--config', stack.proxy.configFile], { timeoutMs: 30_000 });
  const curl = (url: string, creds: { user: string; pass: string } | null, ...extra: string[]) => curlWithCa(path.join(stack.certDir, 'ca.crt'), url, creds, ...extra);

  before(async () => {
    work = await makeTempDir('access-tokens');
    hostsEntry = await addLoopbackName();
    [dockerd, image] = await Promise.all([startDockerd(), makeOciImage(path.join(work, 'img'), { layerBytes: 32 * 1024 })]);
    await toDockerArchive(image, path.join(work, 'img.tar'), 'local/img:1');
    await dockerd.docker(['load', '-i', path.join(work, 'img.tar')]);
    stack = await startTlsStack({
      auth: { mode: 'private', challenge: 'token' },
      users: { root: ROOT.pass, alice: ALICE.pass, bob: BOB.pass },
      hostsEntry,
      // Tokens first, as docs/identity.md recommends; the replicas below list them after htpasswd.
      sources: (htpasswdFile) => [{ type: 'tokens', maxDays: 90, adminGroup: 'admins' }, { type: 'htpasswd', file: htpasswdFile }],
      extra: { access: RULES, groups: { admins: ['root'], 'team-a': ['alice'] } },
    });
    await dockerd.trustCa(stack.host, stack.caPem);
    podman = await startContainersTool('podman');
    for (const [name, scope] of [['ci-push', 'team-a/**:pull,push'], ['ci-pull', 'team-a/**:pull']] as const) {
      const made = await cli('create', name, '--owner', 'alice', '--scope', scope, '--expires', '30d');
      assert.equal(made.code, 0, made.stderr);
      assert.match(made.stdout, /^rgt_[A-Za-z0-9_-]{43}\n$/, 'the secret alone on stdout');
      assert.match(made.stderr, new RegExp(`created access token "${name}" for "alice"`));
      secrets[name] = made.stdout.trim();
    }
  });

  after(async () => {
    await podman?.stop().catch(() => {});
    await dockerd?.untrustCa(stack?.host ?? '').catch(() => {});
    await dockerd?.stop();
    await stack?.stop();
    await hostsEntry?.remove();
    if (work) await removeTempDir(work);
  });

  test('docker, podman and skopeo push with a token; a pull-only token cannot push where its owner may', async () => {
    const login = await dockerd.login(stack.host, 'ci-push', secrets['ci-push']!);
    assert.equal(login.code, 0, login.stderr);
    await dockerd.docker(['tag', 'local/img:1', `${stack.host}/team-a/app:docker`]);
    const pushed = await dockerd.docker(['push', `${stack.host}/team-a/app:docker`], { allowFail: true, timeoutMs: 60_000 });
    assert.equal(pushed.code, 0, pushed.stderr);
    await dockerd.docker(['tag', 'local/img:1', `${stack.host}/alice/own:docker`]);
    const outside = await dockerd.docker(['push', `${stack.host}/alice/own:docker`], { allowFail: true, timeoutMs: 60_000 });
    assert.notEqual(outside.code, 0, 'alice may push to alice/**, her token only to team-a/**');
    assert.match(outside.stderr, /access token "ci-push" may not push to alice\/own/);

    const readOnly = await dockerd.login(stack.host, 'ci-pull', secrets['ci-pull']!);
    assert.equal(readOnly.code, 0, readOnly.stderr);
    await dockerd.docker(['rmi', `${stack.host}/team-a/app:docker`]);
    const pulled = await dockerd.docker(['pull', `${stack.host}/team-a/app:docker`], { allowFail: true, timeoutMs: 60_000 });
    assert.equal(pulled.code, 0, pulled.stderr);
    await dockerd.docker(['tag', 'local/img:1', `${stack.host}/team-a/app:readonly`]);
    const refused = await dockerd.docker(['push', `${stack.host}/team-a/app:readonly`], { allowFail: true, timeoutMs: 60_000 });
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /access token "ci-pull" may not push to team-a\/app \(access token "ci-pull" is limited to team-a\/\*\*:pull\)/);
    await dockerd.docker(['logout', stack.host]);

    const viaPodman = await podman.push(image, `${stack.host}/team-a/app:podman`, { creds: { user: 'ci-push', pass: secrets['ci-push']! }, certDir: stack.certDir, timeoutMs: 60_000 });
    assert.equal(viaPodman.code, 0, viaPodman.stderr);
    const viaSkopeo = await skopeoCopy(image.ociRef, `docker://${stack.host}/team-a/app:skopeo`, { destCreds: { user: 'ci-push', pass: secrets['ci-push']! }, certDir: stack.certDir, allowFail: true, timeoutMs: 60_000 });
    assert.equal(viaSkopeo.code, 0, viaSkopeo.stderr);
    const skopeoRefused = await skopeoCopy(image.ociRef, `docker://${stack.host}/team-a/app:skopeo-ro`, { destCreds: { user: 'ci-pull', pass: secrets['ci-pull']! }, certDir: stack.certDir, allowFail: true, timeoutMs: 60_000 });
    assert.notEqual(skopeoRefused.code, 0);
    const podmanRefused = await podman.push(image, `${stack.host}/team-a/app:podman-ro`, { creds: { user: 'ci-pull', pass: secrets['ci-pull']! }, certDir: stack.certDir, timeoutMs: 60_000 });
    assert.notEqual(podmanRefused.code, 0);

    const audit = stack.proxy.logs().map((l) => l.audit as Record<string, unknown> | undefined).filter((a) => a?.action === 'push' && a.tag === 'skopeo');
    assert.deepEqual([audit[0]?.user, audit[0]?.accessToken], ['alice', 'ci-push'], 'the audit line names the owner and the token');

    const listed = await cli('list');
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /^NAME\s+OWNER\s+SCOPES\s+CREATED\s+EXPIRES\s+LAST USED$/m);
    assert.match(listed.stdout, /^ci-push\s+alice\s+team-a\/\*\*:pull,push\s+\d{4}-\d\d-\d\d\s+\d{4}-\d\d-\d\d\s+\d{4}-\d\d-\d\d \d\d:\d\d$/m, 'last used is shown');
    assert.doesNotMatch(listed.stdout, /rgt_/);
  });

  test('people manage their own tokens with curl over HTTPS; revoking ends a token at once', async () => {
    const created = await curl(`${stack.url}/gate/v1/tokens`, BOB, '-X', 'POST', '-H', 'Content-Type: application/json', '--data', '{"name":"bob-laptop","scopes":["bob/**:pull,push"],"expires":"7d"}');
    assert.equal(created.status, 201, created.body);
    const secret = (JSON.parse(created.body) as { secret: string }).secret;
    const noPassword = await curl(`${stack.url}/gate/v1/tokens`, null);
    assert.equal(noPassword.status, 401);
    assert.equal((await curl(`${stack.url}/gate/v1/tokens`, { user: 'bob-laptop', pass: secret })).status, 403, 'a token cannot manage tokens');
    const bobSees = JSON.parse((await curl(`${stack.url}/gate/v1/tokens`, BOB)).body) as { tokens: { name: string }[] };
    assert.deepEqual(bobSees.tokens.map((t) => t.name), ['bob-laptop'], 'bob sees his own only');
    const bobRevokes = await curl(`${stack.url}/gate/v1/tokens/ci-push`, BOB, '-X', 'DELETE');
    assert.equal(bobRevokes.status, 404, 'nor can he revoke alice\'s');

    const push = () => skopeoCopy(image.ociRef, `docker://${stack.host}/bob/tool:1`, { destCreds: { user: 'bob-laptop', pass: secret }, certDir: stack.certDir, allowFail: true, timeoutMs: 60_000 });
    assert.equal((await push()).code, 0);
    assert.equal((await curl(`${stack.url}/gate/v1/tokens/bob-laptop`, BOB, '-X', 'DELETE')).status, 204);
    const afterRevoke = await push();
    assert.notEqual(afterRevoke.code, 0);
    assert.match(afterRevoke.stderr, /invalid username or password|unauthorized/i);

    const revoked = await cli('revoke', 'ci-pull');
    assert.equal(revoked.code, 0, revoked.stderr);
    const at = Date.now();
    let status = 0;
    while (status !== 401 && Date.now() - at < 1000) status = (await curl(`${stack.url}/token?service=${encodeURIComponent(stack.host)}`, { user: 'ci-pull', pass: secrets['ci-pull']! })).status;
    assert.equal(status, 401, 'revoked with the CLI: refused by the running proxy within a second');
    assert.equal((await cli('revoke', 'ci-pull')).code, 1, 'revoking twice says so');
  });
});

describe('access tokens across replicas sharing Redis', () => {
  let fleet: Fleet;
  let replicas: RunningProxy[];

  before(async () => {
    fleet = await startFleet({
      name: 'access-tokens-replicas',
      users: { alice: ALICE.pass },
      replicas: 2,
      config: ({ redis, upstream, htpasswdFile }) => ({
        upstream,
        redis,
        auth: { mode: 'private', htpasswdFile, tokenService: 'registry.test', sources: [{ type: 'htpasswd', file: htpasswdFile }, { type: 'tokens' }] },
      }),
    });
    replicas = fleet.replicas;
  });

  after(() => fleet?.stop());

  test('made on one replica, revoked on it: refused on the other within a second, its registry tokens too', async () => {
    const [a, b] = replicas as [RunningProxy, RunningProxy];
    const made = await request(`${a.url}/gate/v1/tokens`, { method: 'POST', auth: ALICE, headers: { 'content-type': 'application/json' }, body: '{"name":"fleet","scopes":["alice/**:pull"],"expires":"1d"}' });
    assert.equal(made.status, 201, made.body.toString());
    const secret = (JSON.parse(made.body.toString()) as { secret: string }).secret;
    const tags = (auth: { user: string; pass: string } | { bearer: string }) => get(`${b.url}/v2/alice/app/tags/list`, { auth });
    assert.equal((await tags({ user: 'fleet', pass: secret })).status, 404, 'B knows it: the registry answers (no such repository yet)');
    const issued = await get(`${b.url}/token?service=registry.test&scope=repository:alice/app:pull`, { auth: { user: 'fleet', pass: secret } });
    const bearer = (JSON.parse(issued.body.toString()) as { token: string }).token;
    assert.equal((await tags({ bearer })).status, 404);

    const revoked = await request(`${a.url}/gate/v1/tokens/fleet`, { method: 'DELETE', auth: ALICE });
    assert.equal(revoked.status, 204);
    const at = Date.now();
    let basic = 0;
    let token = 0;
    while (Date.now() - at < 1000 && (basic !== 401 || token !== 401)) {
      [basic, token] = [(await tags({ user: 'fleet', pass: secret })).status, (await tags({ bearer })).status];
      if (basic !== 401 || token !== 401) await sleep(20);
    }
    assert.deepEqual([basic, token], [401, 401], `B still accepted the revoked token ${Date.now() - at} ms after the revoke`);
  });

  test('a refresh token handed out by one replica is honoured by the other, and stored there only sealed and hashed', async () => {
    const [a, b] = replicas as [RunningProxy, RunningProxy];
    const login = await get(`${a.url}/token?service=registry.test&offline_token=true&client_id=docker`, { auth: ALICE });
    assert.equal(login.status, 200);
    const refreshToken = (JSON.parse(login.body.toString()) as { refresh_token: string }).refresh_token;
    assert.match(refreshToken, /^rgr_/);
    const form = `grant_type=refresh_token&refresh_token=${refreshToken}&client_id=docker&service=registry.test&scope=repository:alice/app:pull`;
    const used = await request(`${b.url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form });
    assert.equal(used.status, 200, used.body.toString());
    const bearer = (JSON.parse(used.body.toString()) as { token: string }).token;
    assert.equal((await get(`${b.url}/v2/alice/app/tags/list`, { auth: { bearer } })).status, 404, 'a registry token for alice, from B');
    const redisCli = async (...args: string[]) => (await run('redis-cli', ['-p', String(fleet.redis.port), ...args], { timeoutMs: 5000 })).stdout.trim();
    const key = (await redisCli('--scan', '--pattern', 'registry-gate:refresh:*')).split('\n').find((k) => k !== '')!;
    assert.ok(key, 'the refresh token is in Redis');
    const stored = await redisCli('get', key);
    assert.ok(!stored.includes(refreshToken.slice(4)) && !stored.includes('alice'), 'sealed, and only a hash of the secret in the key');
    const ttl = Number(await redisCli('pttl', key));
    assert.ok(ttl > 29 * 86_400_000 && ttl <= 30 * 86_400_000, `expires with the token (${ttl} ms)`);
  });

  test('the CLI with the same config writes to Redis: the replicas see its tokens', async () => {
    const [a, b] = replicas as [RunningProxy, RunningProxy];
    const made = await runProxyCli(['token', 'create', 'from-cli', '--owner', 'alice', '--scope', 'alice/**:pull', '--expires', '2d', '--config', a.configFile]);
    assert.equal(made.code, 0, made.stderr);
    const secret = made.stdout.trim();
    assert.equal((await get(`${b.url}/v2/alice/app/tags/list`, { auth: { user: 'from-cli', pass: secret } })).status, 404);
    const listed = await runProxyCli(['token', 'list', '--config', b.configFile]);
    assert.match(listed.stdout, /^from-cli\s+alice\s+alice\/\*\*:pull/m);
  });
});
