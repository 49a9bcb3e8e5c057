/**
 * CI jobs that log in with their issuer's ID token, with real clients: two real OIDC issuers on
 * loopback over TLS (GitHub-shaped and GitLab-shaped tokens), claim rules that decide where each
 * job may push, docker keeping a refresh token instead of the 20-second ID token (and losing it
 * when that expires), the issuer rotating its key and going away.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AccessRuleConfig, AuthConfig } from '../../src/config/types.js';
import { curl as curlWithCa } from '../harness/curl.js';
import { startDockerd, type Dockerd } from '../harness/dockerd.js';
import { addLoopbackName, type LoopbackName } from '../harness/hosts.js';
import { startContainersTool, type ImageTool } from '../harness/image-tools.js';
import { makeOciImage, toDockerArchive, type OciImage } from '../harness/oci-image.js';
import { githubClaims, gitlabClaims, startIssuer, type TestIssuer } from '../harness/oidc-issuer.js';
import { skopeoCopy } from '../harness/skopeo.js';
import { startTlsStack, type TlsStack } from '../harness/stack.js';
import { makeTestCa, type TestCa } from '../harness/tls-ca.js';
import { makeTempDir, removeTempDir } from '../harness/tmp.js';
import { waitUntil } from '../harness/process.js';

const AUD = 'https://registry.example.test';
/** The refresh token of a GitHub job lasts this long (the source's maxJobMinutes). */
const JOB_MINUTES = 2;
const RULES: AccessRuleConfig[] = [
  { who: ['group:admins'], repositories: ['**'], actions: ['*'] },
  { who: ['oidc:github'], claims: { ref: 'refs/heads/main' }, repositories: ['${claims.repository}', '${claims.repository}/**'], actions: ['pull', 'push'] },
  { who: ['oidc:github'], repositories: ['${claims.repository}'], actions: ['pull'] },
  { who: ['oidc:gitlab'], claims: { ref_protected: true }, repositories: ['${claims.namespace_path}/**'], actions: ['pull', 'push'] },
  { who: ['oidc:gitlab'], repositories: ['${claims.namespace_path}/**'], actions: ['pull'] },
];

describe('CI jobs log in with OIDC ID tokens (real issuers, docker, podman, skopeo)', () => {
  let issuerCa: TestCa;
  let github: TestIssuer;
  let gitlab: TestIssuer;
  let dockerd: Dockerd;
  let stack: TlsStack;
  let hostsEntry: LoopbackName;
  let podman: ImageTool;
  let work: string;
  let image: OciImage;
  /** When docker logged in with its 20-second ID token. */
  let loggedInAt = 0;

  const curl = (url: string, ...extra: string[]) => curlWithCa(path.join(stack.certDir, 'ca.crt'), url, null, ...extra);
  const dockerPush = async (ref: string) => {
    await dockerd.docker(['tag', 'local/img:1', `${stack.host}/${ref}`]);
    return dockerd.docker(['push', `${stack.host}/${ref}`], { allowFail: true, timeoutMs: 60_000 });
  };

  before(async () => {
    work = await makeTempDir('oidc-clients');
    issuerCa = await makeTestCa('test OIDC issuers CA');
    hostsEntry = await addLoopbackName();
    [github, gitlab, dockerd, image] = await Promise.all([startIssuer(issuerCa), startIssuer(issuerCa), startDockerd(), makeOciImage(path.join(work, 'img'), { layerBytes: 32 * 1024 })]);
    await toDockerArchive(image, path.join(work, 'img.tar'), 'local/img:1');
    await dockerd.docker(['load', '-i', path.join(work, 'img.tar')]);
    stack = await startTlsStack({
      auth: { mode: 'private', challenge: 'token' },
      users: { root: 'root-password' },
      hostsEntry,
      sources: (htpasswdFile): AuthConfig['sources'] => [
        { type: 'oidc', name: 'github', issuer: github.url, audience: [AUD], caFile: issuerCa.certFile, require: { repository_owner: 'acme' }, subject: '${repository}', groups: ['${repository_owner}'], maxJobMinutes: JOB_MINUTES },
        { type: 'oidc', name: 'gitlab', issuer: gitlab.url, audience: [AUD], caFile: issuerCa.certFile, require: { namespace_path: 'acme' }, subject: '${project_path}' },
        { type: 'htpasswd', file: htpasswdFile },
      ],
      extra: { access: RULES, groups: { admins: ['root'] } },
    });
    await dockerd.trustCa(stack.host, stack.caPem);
    podman = await startContainersTool('podman');
  });

  after(async () => {
    await podman?.stop().catch(() => {});
    await dockerd?.untrustCa(stack?.host ?? '').catch(() => {});
    await dockerd?.stop();
    await stack?.stop();
    await hostsEntry?.remove();
    await Promise.all([github?.stop(), gitlab?.stop()]);
    await issuerCa?.dispose();
    if (work) await removeTempDir(work);
  });

  test('docker logs in with a 20-second ID token, keeps a refresh token instead, pushes where the claims allow', async () => {
    const idToken = await github.mint(githubClaims(AUD), { expiresInSeconds: 20 });
    const login = await dockerd.login(stack.host, 'oidc', idToken);
    loggedInAt = Date.now();
    assert.equal(login.code, 0, login.stderr);
    const saved = JSON.parse(await readFile(path.join(dockerd.configDir, 'config.json'), 'utf8')) as { auths: Record<string, { auth?: string; identitytoken?: string }> };
    const entry = saved.auths[stack.host]!;
    assert.match(entry.identitytoken ?? '', /^rgr_[A-Za-z0-9_-]{43}$/, 'docker keeps the refresh token');
    assert.ok(!JSON.stringify(saved).includes(idToken.split('.')[1]!), 'and not the ID token');

    const pushed = await dockerPush('acme/app:early');
    assert.equal(pushed.code, 0, pushed.stderr);
    const elsewhere = await dockerPush('acme/other:early');
    assert.notEqual(elsewhere.code, 0);
    assert.match(elsewhere.stderr, /CI job "acme\/app" \(oidc:github\) may not push to acme\/other \(no rule gives access to it\)/);
  });

  test('skopeo and podman push with the ID token as the password; a feature branch and an unprotected GitLab ref are refused', async () => {
    const main = await github.mint(githubClaims(AUD));
    const viaSkopeo = await skopeoCopy(image.ociRef, `docker://${stack.host}/acme/app:skopeo`, { destCreds: { user: 'oidc', pass: main }, certDir: stack.certDir, allowFail: true, timeoutMs: 60_000 });
    assert.equal(viaSkopeo.code, 0, viaSkopeo.stderr);
    const feature = await github.mint(githubClaims(AUD, { ref: 'refs/heads/feature' }));
    const branchRefused = await skopeoCopy(image.ociRef, `docker://${stack.host}/acme/app:feature`, { destCreds: { user: 'oidc', pass: feature }, certDir: stack.certDir, allowFail: true, timeoutMs: 60_000 });
    assert.notEqual(branchRefused.code, 0);
    assert.match(branchRefused.stderr, /CI job \\?"acme\/app\\?" \(oidc:github\) may not push to acme\/app \(rule 3 does not allow push\)/);

    const protectedRef = await gitlab.mint(gitlabClaims(AUD, { project_path: 'acme/tool' }));
    const viaPodman = await podman.push(image, `${stack.host}/acme/tool:podman`, { creds: { user: 'gitlab-ci', pass: protectedRef }, certDir: stack.certDir, timeoutMs: 60_000 });
    assert.equal(viaPodman.code, 0, viaPodman.stderr);
    const unprotected = await gitlab.mint(gitlabClaims(AUD, { project_path: 'acme/tool', ref_protected: 'false' }));
    const podmanRefused = await podman.push(image, `${stack.host}/acme/tool:unprotected`, { creds: { user: 'gitlab-ci', pass: unprotected }, certDir: stack.certDir, timeoutMs: 60_000 });
    assert.notEqual(podmanRefused.code, 0);
    assert.match(podmanRefused.stderr, /CI job \\?"acme\/tool\\?" \(oidc:gitlab\) may not push to acme\/tool \(rule 5 does not allow push\)/);

    const otherOwner = await github.mint(githubClaims(AUD, { repository: 'evil/app' }));
    const ownerRefused = await skopeoCopy(image.ociRef, `docker://${stack.host}/evil/app:x`, { destCreds: { user: 'oidc', pass: otherOwner }, certDir: stack.certDir, allowFail: true, timeoutMs: 60_000 });
    assert.notEqual(ownerRefused.code, 0);
    assert.match(ownerRefused.stderr, /ID token refused by oidc source \\?"github\\?": claim \\?"repository_owner\\?" is \\?"evil\\?", not \\?"acme\\?"/);

    const audit = stack.proxy.logs().map((l) => l.audit as Record<string, unknown> | undefined).filter((a) => a?.action === 'push' && a.tag === 'skopeo');
    assert.deepEqual([audit[0]?.user, audit[0]?.oidc], ['acme/app', 'github'], 'the audit line names the job and its issuer');
    // The line is written once the response is sent, which the client may see first.
    const refusedLine = () => stack.proxy.logs().map((l) => l.audit as Record<string, unknown> | undefined).find((a) => a?.status === 403 && a.user === 'acme/tool');
    await waitUntil(async () => refusedLine() !== undefined, { timeoutMs: 5000, what: 'the audit line of the refused push' });
    assert.equal(refusedLine()?.oidc, 'gitlab', 'a refused push names the issuer too');
  });

  test('a wrong audience, an expired token and an untrusted issuer: docker login fails with what failed', async () => {
    const wrongAudience = await dockerd.login(stack.host, 'oidc', await github.mint(githubClaims('https://elsewhere.example')), { allowFail: true });
    assert.notEqual(wrongAudience.code, 0);
    assert.match(wrongAudience.stderr, /ID token refused: its audience "https:\/\/elsewhere\.example" is not "https:\/\/registry\.example\.test"/);
    const expired = await dockerd.login(stack.host, 'oidc', await github.mint(githubClaims(AUD), { expiresInSeconds: -120 }), { allowFail: true });
    assert.notEqual(expired.code, 0);
    assert.match(expired.stderr, /ID token refused: expired at /);
    const stranger = await startIssuer(issuerCa);
    try {
      const untrusted = await dockerd.login(stack.host, 'oidc', await stranger.mint(githubClaims(AUD)), { allowFail: true });
      assert.notEqual(untrusted.code, 0);
      assert.match(untrusted.stderr, /ID token refused: its issuer "https:\/\/127\.0\.0\.1:\d+" is not one this registry trusts/);
    } finally {
      await stranger.stop();
    }
  });

  test('the issuer rotates its key while away: old keys keep verifying, /readyz degraded; back, the new key verifies without a restart', async () => {
    const oldKid = github.signingKey().kid as string;
    const kid = await github.rotate();
    await github.stop();
    try {
      // The proxy asks the issuer again for an unknown key at most every 10 s.
      await sleep(10_500);
      const rotated = await skopeoCopy(image.ociRef, `docker://${stack.host}/acme/app:rotated`, { destCreds: { user: 'oidc', pass: await github.mint(githubClaims(AUD), { kid }) }, certDir: stack.certDir, allowFail: true, timeoutMs: 60_000 });
      assert.notEqual(rotated.code, 0, 'a key the proxy cannot fetch');
      assert.match(rotated.stderr, /ID token refused: signed with a key the issuer does not publish/);
      const ready = await curl(`${stack.url}/readyz`);
      assert.equal(ready.status, 200, 'degraded, not down');
      assert.match(ready.body, /"status":"degraded".*oidc source \\"github\\": issuer unreachable/);
      const old = await skopeoCopy(image.ociRef, `docker://${stack.host}/acme/app:old-key`, { destCreds: { user: 'oidc', pass: await github.mint(githubClaims(AUD), { kid: oldKid }) }, certDir: stack.certDir, allowFail: true, timeoutMs: 60_000 });
      assert.equal(old.code, 0, `the keys fetched before keep verifying: ${old.stderr}`);
    } finally {
      await github.start();
    }
    await sleep(10_500);
    const rotated = await skopeoCopy(image.ociRef, `docker://${stack.host}/acme/app:rotated`, { destCreds: { user: 'oidc', pass: await github.mint(githubClaims(AUD), { kid }) }, certDir: stack.certDir, allowFail: true, timeoutMs: 60_000 });
    assert.equal(rotated.code, 0, rotated.stderr);
    const ready = await curl(`${stack.url}/readyz`);
    assert.doesNotMatch(ready.body, /issuer unreachable/);
  });

  test('a minute after login docker still pushes (the ID token is long expired); past the refresh token\'s life it is refused', async () => {
    assert.ok(loggedInAt > 0, 'docker logged in above');
    await sleep(Math.max(0, loggedInAt + 62_000 - Date.now()));
    const late = await dockerPush('acme/app:late');
    assert.equal(late.code, 0, late.stderr);
    await sleep(Math.max(0, loggedInAt + JOB_MINUTES * 60_000 + 2_000 - Date.now()));
    const expired = await dockerPush('acme/app:expired');
    assert.notEqual(expired.code, 0);
    assert.match(expired.stderr, /refresh token expired at .*; log in again/);
  });
});
