/**
 * The proxy's own token service against the real registry: what a token allows, and that forged,
 * expired, foreign-service and foreign-key tokens are refused.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { TokenAuthority } from '../../src/auth/token.js';
import { credentialStamp } from '../../src/auth/users.js';
import { parseHtpasswd } from '../../src/auth/htpasswd.js';
import { readFile } from 'node:fs/promises';
import { keyIdOf, loadOrCreateSigningKey } from '../../src/state/signing-key.js';
import { writeHtpasswd } from '../harness/htpasswd.js';
import { disposeProxyConfig, proxyConfig, startProxy, type ProxyConfigFile, type RunningProxy } from '../harness/proxy.js';
import { get, request } from '../harness/registry-client.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { makeTempDir, removeTempDir } from '../harness/tmp.js';
import { waitUntil } from '../harness/process.js';

const ALICE = { user: 'alice', pass: 'correct horse' };

describe('token service', () => {
  let registry: Registry;
  let proxy: RunningProxy;
  let config: ProxyConfigFile;
  let work: string;
  let service: string;

  before(async () => {
    work = await makeTempDir('tokens');
    const htpasswdFile = path.join(work, 'htpasswd');
    await writeHtpasswd(htpasswdFile, { alice: ALICE.pass });
    registry = await startRegistry();
    config = await proxyConfig({ upstream: registry.url, auth: { mode: 'private', challenge: 'token', htpasswdFile } });
    proxy = await startProxy(config);
    service = proxy.host;
  });

  after(async () => {
    await proxy?.stop();
    await registry?.stop();
    if (config) await disposeProxyConfig(config);
    if (work) await removeTempDir(work);
  });

  async function tokenFor(scope: string, auth?: { user: string; pass: string }): Promise<{ status: number; token?: string; access?: unknown }> {
    const res = await get(`${proxy.url}/token?service=${encodeURIComponent(service)}&scope=${encodeURIComponent(scope)}`, { auth });
    if (res.status !== 200) return { status: res.status };
    const body = JSON.parse(res.body.toString()) as { token: string; access_token: string; expires_in: number };
    assert.equal(body.token, body.access_token);
    const claims = JSON.parse(Buffer.from(body.token.split('.')[1]!, 'base64url').toString()) as { access: unknown };
    return { status: 200, token: body.token, access: claims.access };
  }

  const startUpload = (repo: string, bearer: string) => request(`${proxy.url}/v2/${repo}/blobs/uploads/`, { method: 'POST', auth: { bearer } });

  test('/v2/ challenges with a Bearer realm and service derived from the request', async () => {
    const res = await get(`${proxy.url}/v2/`);
    assert.equal(res.status, 401);
    assert.equal(res.headers['www-authenticate'], `Bearer realm="${proxy.url}/token",service="${service}"`);
    assert.equal(JSON.parse(res.body.toString()).errors[0].code, 'UNAUTHORIZED');
  });

  test('wrong credentials get 401 at the token endpoint; anonymous gets a token with nothing in private mode, refused at once', async () => {
    assert.equal((await tokenFor('repository:a/app:pull', { user: 'alice', pass: 'wrong' })).status, 401);
    assert.equal((await tokenFor('repository:a/app:pull', { user: 'bob', pass: 'x' })).status, 401);
    const anonymous = await tokenFor('repository:a/app:pull');
    assert.equal(anonymous.status, 200);
    assert.deepEqual(anonymous.access, []);
    const refused = await get(`${proxy.url}/v2/a/app/manifests/latest`, { auth: { bearer: anonymous.token! } });
    assert.equal(refused.status, 403);
    assert.equal(refused.headers['www-authenticate'], undefined);
    const error = JSON.parse(refused.body.toString()).errors[0];
    assert.equal(error.code, 'DENIED');
    assert.match(error.message, /authentication required to pull from a\/app/);
  });

  test("a changed password voids the tokens issued before, at their next request", async () => {
    const bob = { user: 'bob', pass: 'before' };
    const htpasswdFile = String(config.auth?.htpasswdFile);
    await writeHtpasswd(htpasswdFile, { alice: ALICE.pass, bob: bob.pass });
    let token: string | undefined;
    await waitUntil(async () => (token = (await tokenFor('repository:team-a/app:pull,push', bob)).token) !== undefined, { timeoutMs: 10_000, what: 'bob to be loaded' });
    assert.equal((await startUpload('team-a/app', token!)).status, 202);
    await writeHtpasswd(htpasswdFile, { alice: ALICE.pass, bob: 'after' });
    await waitUntil(async () => (await startUpload('team-a/app', token!)).status === 401, { timeoutMs: 10_000, what: 'the old token to be refused' });
    const refused = await startUpload('team-a/app', token!);
    assert.match(String(refused.headers['www-authenticate']), /error="invalid_token"/);
    assert.match(JSON.parse(refused.body.toString()).errors[0].message, /the password of "bob" changed/);
    assert.equal((await startUpload('team-a/app', (await tokenFor('repository:team-a/app:pull,push', { user: 'bob', pass: 'after' })).token!)).status, 202);
  });

  test('POST /token with grant_type=password (containerd) issues the token; an unknown refresh token gets 401, a grant it does not know 400', async () => {
    const form = (fields: Record<string, string>) =>
      request(`${proxy.url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields).toString() });
    const granted = await form({ grant_type: 'password', username: ALICE.user, password: ALICE.pass, service, scope: 'repository:team-a/app:pull,push', client_id: 'ctr' });
    assert.equal(granted.status, 200);
    const body = JSON.parse(granted.body.toString()) as { access_token: string };
    assert.equal((await startUpload('team-a/app', body.access_token)).status, 202);
    const wrong = await form({ grant_type: 'password', username: ALICE.user, password: 'nope', service });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.headers['www-authenticate'], 'Basic realm="Registry realm"');
    const bogus = await form({ grant_type: 'refresh_token', refresh_token: 'x', service });
    assert.equal(bogus.status, 401);
    assert.equal(JSON.parse(bogus.body.toString()).errors[0].message, 'not a refresh token of this registry; log in again');
    assert.equal((await form({ grant_type: 'client_credentials', service })).status, 400);
    const huge = await form({ grant_type: 'password', username: 'x'.repeat(20_000), password: 'y', service });
    assert.equal(huge.status, 413);
  });

  test('a token for repository A pushes to A and cannot push to B', async () => {
    const { token, access } = await tokenFor('repository:team-a/app:pull,push', ALICE);
    assert.deepEqual(access, [{ type: 'repository', name: 'team-a/app', actions: ['pull', 'push'] }]);
    const own = await startUpload('team-a/app', token!);
    assert.equal(own.status, 202);
    assert.match(String(own.headers.location), new RegExp(`^${proxy.url}/v2/team-a/app/blobs/uploads/`));

    const other = await startUpload('team-b/app', token!);
    assert.equal(other.status, 401);
    const challenge = String(other.headers['www-authenticate']);
    assert.match(challenge, /error="insufficient_scope"/);
    assert.match(challenge, /scope="repository:team-b\/app:pull,push"/);
  });

  test('forged, expired, other-service and other-key tokens are refused', async () => {
    const { token } = await tokenFor('repository:team-a/app:pull,push', ALICE);
    const [header, payload, signature] = token!.split('.');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString());
    claims.access = [{ type: 'repository', name: 'team-b/app', actions: ['pull', 'push'] }];
    const forged = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${signature}`;

    const key = await loadOrCreateSigningKey(config.stateDir);
    const access = [{ type: 'repository', name: 'team-a/app', actions: ['pull', 'push'] }];
    const aliceHash = parseHtpasswd(await readFile(String(config.auth?.htpasswdFile), 'utf8')).users.get('alice')!;
    const stamp = credentialStamp(aliceHash);
    const issue = (authority: TokenAuthority, svc = service) => authority.issue({ subject: 'alice', service: svc, access, stamp }).token;
    const expired = issue(new TokenAuthority(key, { ttlSeconds: 60, issuer: 'registry-gate', now: () => Date.now() - 3_600_000 }));
    const otherService = issue(new TokenAuthority(key, { ttlSeconds: 60, issuer: 'registry-gate' }), 'registry.elsewhere:443');
    const secret = randomBytes(32);
    const otherKey = issue(new TokenAuthority({ id: keyIdOf(secret), secret }, { ttlSeconds: 60, issuer: 'registry-gate' }));
    const sameKeyOtherId = issue(new TokenAuthority({ id: key.id, secret }, { ttlSeconds: 60, issuer: 'registry-gate' }));
    const genuine = issue(new TokenAuthority(key, { ttlSeconds: 60, issuer: 'registry-gate' }));

    assert.equal((await startUpload('team-a/app', genuine)).status, 202, 'control: a token made with the real key works');
    for (const [what, bad] of Object.entries({ forged, expired, otherService, otherKey, sameKeyOtherId, garbage: 'not.a.token' })) {
      const res = await startUpload(what === 'forged' ? 'team-b/app' : 'team-a/app', bad);
      assert.equal(res.status, 401, what);
      assert.match(String(res.headers['www-authenticate']), /error="invalid_token"/, what);
    }
  });

  test('tokens survive a restart: the signing key is kept in stateDir', async () => {
    const { token } = await tokenFor('repository:team-a/app:pull', ALICE);
    await proxy.stop();
    proxy = await startProxy(config);
    const res = await get(`${proxy.url}/v2/team-a/app/tags/list`, { auth: { bearer: token! } });
    assert.notEqual(res.status, 401);
    assert.equal(res.headers['docker-distribution-api-version'], 'registry/2.0');
  });

  test('a user added to the htpasswd file can log in without a restart; a removed one cannot', async () => {
    const htpasswdFile = String(config.auth?.htpasswdFile);
    assert.equal((await tokenFor('repository:team-a/app:pull', { user: 'bob', pass: 'builder' })).status, 401);
    await writeHtpasswd(htpasswdFile, { bob: 'builder' });
    let status = 0;
    for (let i = 0; i < 50 && status !== 200; i++) {
      status = (await tokenFor('repository:team-a/app:pull', { user: 'bob', pass: 'builder' })).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(status, 200, 'bob was not picked up within 5 s');
    assert.equal((await tokenFor('repository:team-a/app:pull', ALICE)).status, 401, 'alice is gone from the file but still logs in');
  });
});
