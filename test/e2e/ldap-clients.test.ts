/**
 * Directory users with real clients: a slapd (ldaps://) after the htpasswd file in auth.sources;
 * docker, podman and skopeo log in as directory users, and group rules from the directory decide
 * where they may push. Then the directory is stopped: htpasswd users and logins verified lately go
 * on, a new directory login gets 503 naming the directory, nobody is locked out, and it works
 * again when the directory is back. A guessing loop is cut by the login limits before the
 * directory sees more than a few binds.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import type { AccessRuleConfig } from '../../src/config/types.js';
import { startDockerd, type Dockerd } from '../harness/dockerd.js';
import { addLoopbackName, type LoopbackName } from '../harness/hosts.js';
import { startContainersTool, type ImageTool } from '../harness/image-tools.js';
import { makeOciImage, toDockerArchive, type OciImage } from '../harness/oci-image.js';
import { curl as curlWithCa } from '../harness/curl.js';
import { skopeoCopy } from '../harness/skopeo.js';
import { directorySource, LDAP_SUFFIX, startSlapd, type Slapd } from '../harness/slapd.js';
import { startTlsStack, type TlsStack } from '../harness/stack.js';
import { makeTempDir, removeTempDir } from '../harness/tmp.js';

const ROOT = { user: 'root', pass: 'root-in-htpasswd' };
const ALICE = { user: 'alice', pass: 'alice-in-the-directory' };
const BOB = { user: 'bob', pass: 'bob-in-the-directory' };
const CAROL = { user: 'carol', pass: 'carol-in-the-directory' };
/** Logs in for the first time during the outage: nothing remembers him. */
const DAVE = { user: 'dave', pass: 'dave-in-the-directory' };
const RULES: AccessRuleConfig[] = [
  { who: ['group:admins'], repositories: ['**'], actions: ['*'] },
  // team-a is a directory group; developers holds it (nested).
  { who: ['group:developers'], repositories: ['team-a/**'], actions: ['pull', 'push'] },
  { who: ['authenticated'], repositories: ['${user}/**'], actions: ['pull', 'push'] },
];
const FAILURES_PER_USER = 4;

describe('directory users with real clients', () => {
  let slapd: Slapd;
  let dockerd: Dockerd;
  let stack: TlsStack;
  let hostsEntry: LoopbackName;
  let podman: ImageTool;
  let work: string;
  let image: OciImage;

  before(async () => {
    work = await makeTempDir('ldap-clients');
    hostsEntry = await addLoopbackName();
    [slapd, dockerd, image] = await Promise.all([
      startSlapd({ people: { alice: ALICE.pass, bob: BOB.pass, carol: CAROL.pass, dave: DAVE.pass }, groups: { 'team-a': ['alice'], developers: ['group:team-a'] } }),
      startDockerd(),
      makeOciImage(path.join(work, 'img'), { layerBytes: 32 * 1024 }),
    ]);
    await toDockerArchive(image, path.join(work, 'img.tar'), 'local/img:1');
    await dockerd.docker(['load', '-i', path.join(work, 'img.tar')]);
    stack = await startTlsStack({
      auth: { mode: 'private', challenge: 'token' },
      users: { root: ROOT.pass },
      hostsEntry,
      sources: (htpasswdFile) => [
        { type: 'htpasswd', file: htpasswdFile },
        directorySource(slapd),
      ],
      extra: { access: RULES, groups: { admins: ['root'] }, loginLimits: { failuresPerUser: FAILURES_PER_USER } },
    });
    await dockerd.trustCa(stack.host, stack.caPem);
    podman = await startContainersTool('podman');
  });

  after(async () => {
    await podman?.stop().catch(() => {});
    await dockerd?.untrustCa(stack?.host ?? '').catch(() => {});
    await dockerd?.stop();
    await stack?.stop();
    await slapd?.stop();
    await hostsEntry?.remove();
    if (work) await removeTempDir(work);
  });

  const curl = (url: string, creds: { user: string; pass: string } | null, ...extra: string[]) => curlWithCa(path.join(stack.certDir, 'ca.crt'), url, creds, ...extra);

  test('docker, podman and skopeo log in as a directory user; the directory\'s nested groups decide where they push', async () => {
    const login = await dockerd.login(stack.host, ALICE.user, ALICE.pass);
    assert.equal(login.code, 0, login.stderr);
    await dockerd.docker(['tag', 'local/img:1', `${stack.host}/team-a/app:docker`]);
    const pushed = await dockerd.docker(['push', `${stack.host}/team-a/app:docker`], { allowFail: true, timeoutMs: 60_000 });
    assert.equal(pushed.code, 0, pushed.stderr);
    await dockerd.docker(['tag', 'local/img:1', `${stack.host}/team-b/app:docker`]);
    const refused = await dockerd.docker(['push', `${stack.host}/team-b/app:docker`], { allowFail: true, timeoutMs: 60_000 });
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /denied: user "alice" may not push to team-b\/app/);
    await dockerd.docker(['logout', stack.host]);

    const viaPodman = await podman.push(image, `${stack.host}/team-a/app:podman`, { creds: ALICE, certDir: stack.certDir, timeoutMs: 60_000 });
    assert.equal(viaPodman.code, 0, viaPodman.stderr);
    const viaSkopeo = await skopeoCopy(image.ociRef, `docker://${stack.host}/team-a/app:skopeo`, { destCreds: ALICE, certDir: stack.certDir, allowFail: true, timeoutMs: 60_000 });
    assert.equal(viaSkopeo.code, 0, viaSkopeo.stderr);
    // bob is in the directory but in no group: his own repository only.
    const bobOwn = await skopeoCopy(image.ociRef, `docker://${stack.host}/bob/tool:1`, { destCreds: BOB, certDir: stack.certDir, allowFail: true, timeoutMs: 60_000 });
    assert.equal(bobOwn.code, 0, bobOwn.stderr);
    const bobTeam = await skopeoCopy(image.ociRef, `docker://${stack.host}/team-a/app:bob`, { destCreds: BOB, certDir: stack.certDir, allowFail: true, timeoutMs: 60_000 });
    assert.notEqual(bobTeam.code, 0);
  });

  test('a guessing loop against a directory user is cut by the login limits; the directory sees few binds', async () => {
    const dn = `uid=carol,ou=people,${LDAP_SUFFIX}`;
    const before = slapd.binds(dn);
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) statuses.push((await curl(`${stack.url}/v2/carol/x/tags/list`, { user: 'carol', pass: `guess-${i}` })).status);
    assert.ok(statuses.filter((s) => s === 429).length >= 20, statuses.join(' '));
    assert.ok(slapd.binds(dn) - before <= FAILURES_PER_USER + 1, `${slapd.binds(dn) - before} binds as carol for 30 guesses`);
  });

  test('the directory stopped: htpasswd users and recent directory logins go on, a new directory login gets 503 naming it, nobody is locked out; back within seconds', async () => {
    // alice logged in a moment ago: remembered. Her token too: directory tokens live their lifetime.
    assert.equal((await curl(`${stack.url}/v2/team-a/app/tags/list`, ALICE)).status, 200);
    const token = JSON.parse((await curl(`${stack.url}/token?service=${encodeURIComponent(stack.host)}&scope=repository:team-a/app:pull`, ALICE)).body) as { token: string };
    await slapd.kill();
    try {
      const rootPush = await skopeoCopy(image.ociRef, `docker://${stack.host}/root/during-outage:1`, { destCreds: ROOT, certDir: stack.certDir, allowFail: true, timeoutMs: 60_000 });
      assert.equal(rootPush.code, 0, rootPush.stderr);
      assert.equal((await curl(`${stack.url}/v2/team-a/app/tags/list`, ALICE)).status, 200, 'a login verified a moment ago');
      assert.equal((await curl(`${stack.url}/v2/team-a/app/tags/list`, null, '-H', `Authorization: Bearer ${token.token}`)).status, 200);
      for (let i = 0; i < FAILURES_PER_USER * 2; i++) {
        const dave = await curl(`${stack.url}/v2/dave/tool/tags/list`, DAVE);
        assert.equal(dave.status, 503, dave.body);
        assert.match(dave.body, /"code":"UNAVAILABLE".*identity source \\"ldap\\" \(the directory\) cannot answer now/);
      }
      const login = await dockerd.login(stack.host, DAVE.user, DAVE.pass, { allowFail: true });
      assert.notEqual(login.code, 0);
      assert.doesNotMatch(login.stderr, /unauthorized|incorrect username or password/i, 'docker must not call an outage a wrong password');
      const ready = await curl(`${stack.url}/readyz`, null);
      assert.equal(ready.status, 200, 'degraded, not down: the other sources work');
      assert.match(ready.body, /"status":"degraded".*identity source \\"ldap\\": the directory ldaps:\/\/127\.0\.0\.1:\d+ does not answer/);
    } finally {
      await slapd.start();
    }
    const started = Date.now();
    let status = 0;
    // 404: the registry's answer for a repository dave has not pushed yet; he is in.
    while (status !== 404 && Date.now() - started < 15_000) status = (await curl(`${stack.url}/v2/dave/tool/tags/list`, DAVE)).status;
    assert.equal(status, 404, 'dave logs in after the outage: it counted against nobody');
  });
});
