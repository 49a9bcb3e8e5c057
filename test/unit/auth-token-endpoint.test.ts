import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { AuthMode } from '../../src/config/types.js';
import { parseAuthorization, type Credentials } from '../../src/auth/credentials.js';
import { answerTokenPost, answerTokenRequest, MAX_SCOPES, type TokenEndpointContext } from '../../src/auth/token-endpoint.js';
import { TokenAuthority } from '../../src/auth/token.js';
import { VerifyBusyError } from '../../src/auth/verify-pool.js';
import { keyIdOf } from '../../src/state/signing-key.js';

const SERVICE = 'registry.example.com';
const secret = randomBytes(32);
const authority = new TokenAuthority({ id: keyIdOf(secret), secret }, { ttlSeconds: 300, issuer: 'registry-gate' });
const passwords = new Map([['alice', 'wonderland']]);
const users = { verify: async (user: string, password: string) => passwords.get(user) === password };

function ctx(mode: AuthMode, extra: Partial<TokenEndpointContext> = {}): TokenEndpointContext {
  return { mode, publicCatalog: false, users, authority, expectedService: SERVICE, ...extra };
}
const basic = (user: string, password: string): Credentials => parseAuthorization(`Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`);
const anonymous: Credentials = { kind: 'none' };
const q = (params: [string, string][]) => new URLSearchParams(params);
const withService = (...scopes: string[]) => q([['service', SERVICE], ...scopes.map((s): [string, string] => ['scope', s])]);

function tokenOf(body: string) {
  const parsed = JSON.parse(body);
  const verdict = authority.verify(parsed.token, SERVICE);
  assert.ok(verdict.ok, 'the issued token verifies');
  return { parsed, verdict };
}

test('docker login: no scope and valid credentials → 200 with a token, not cacheable', async () => {
  const query = q([['account', 'alice'], ['client_id', 'docker'], ['offline_token', 'true'], ['service', SERVICE]]);
  const answer = await answerTokenRequest(query, basic('alice', 'wonderland'), ctx('private'));
  assert.equal(answer.status, 200);
  assert.equal(answer.subject, 'alice');
  assert.equal(answer.headers['Cache-Control'], 'no-store');
  assert.match(answer.headers['Content-Type']!, /^application\/json/);
  const { parsed, verdict } = tokenOf(answer.body);
  assert.deepEqual(Object.keys(parsed).sort(), ['access_token', 'expires_in', 'issued_at', 'token']);
  assert.equal(parsed.access_token, parsed.token);
  assert.equal(parsed.expires_in, 300);
  assert.ok(verdict.ok && verdict.subject === 'alice');
  assert.ok(verdict.ok && verdict.access.length === 0);
});

test('docker login with a wrong password or unknown user → 401 with a Basic challenge and a JSON error', async () => {
  for (const creds of [basic('alice', 'nope'), basic('mallory', 'wonderland')]) {
    for (const mode of ['private', 'read-public'] as const) {
      const answer = await answerTokenRequest(withService(), creds, ctx(mode, { realm: 'My "realm"' }));
      assert.equal(answer.status, 401);
      assert.equal(answer.subject, null);
      assert.equal(answer.headers['WWW-Authenticate'], 'Basic realm="My \\"realm\\""');
      assert.deepEqual(JSON.parse(answer.body).errors[0].code, 'UNAUTHORIZED');
    }
  }
});

test('a token for another service is refused with 400; a missing service means ours', async () => {
  const other = await answerTokenRequest(q([['service', 'evil.example.com']]), basic('alice', 'wonderland'), ctx('private'));
  assert.equal(other.status, 400);
  assert.match(JSON.parse(other.body).errors[0].message, /registry\.example\.com/);
  const twice = await answerTokenRequest(q([['service', SERVICE], ['service', SERVICE]]), anonymous, ctx('read-public'));
  assert.equal(twice.status, 400);
  const missing = await answerTokenRequest(q([['scope', 'repository:a:pull']]), anonymous, ctx('read-public'));
  assert.equal(missing.status, 200);
  tokenOf(missing.body);
});

test('read-public, anonymous: pull is granted, push is not, the catalog only when public', async () => {
  const pull = await answerTokenRequest(withService('repository:library/alpine:pull'), anonymous, ctx('read-public'));
  assert.equal(pull.status, 200);
  assert.equal(pull.subject, null);
  assert.deepEqual(tokenOf(pull.body).verdict, {
    ok: true,
    subject: null,
    access: [{ type: 'repository', name: 'library/alpine', actions: ['pull'] }],
    expiresAt: (tokenOf(pull.body).verdict as { expiresAt: number }).expiresAt,
  });

  const push = await answerTokenRequest(withService('repository:team/app:push,pull', 'registry:catalog:*'), anonymous, ctx('read-public'));
  assert.equal(push.status, 200);
  const v = tokenOf(push.body).verdict;
  assert.ok(v.ok);
  assert.deepEqual(v.access, [{ type: 'repository', name: 'team/app', actions: ['pull'] }]);

  const catalog = await answerTokenRequest(withService('registry:catalog:*'), anonymous, ctx('read-public', { publicCatalog: true }));
  const c = tokenOf(catalog.body).verdict;
  assert.ok(c.ok);
  assert.deepEqual(c.access, [{ type: 'registry', name: 'catalog', actions: ['*'] }]);
});

test('Basic Og== (skopeo/podman without credentials) is anonymous, not a failed login', async () => {
  const answer = await answerTokenRequest(withService('repository:a:pull'), parseAuthorization('Basic Og=='), ctx('read-public'));
  assert.equal(answer.status, 200);
  const v = tokenOf(answer.body).verdict;
  assert.ok(v.ok);
  assert.deepEqual(v.access, [{ type: 'repository', name: 'a', actions: ['pull'] }]);
});

test('private, anonymous: 401 with or without scopes, so pulls end in "unauthorized"', async () => {
  for (const query of [withService(), withService('repository:a:pull')]) {
    const answer = await answerTokenRequest(query, anonymous, ctx('private'));
    assert.equal(answer.status, 401);
    assert.equal(answer.headers['WWW-Authenticate'], 'Basic realm="Registry realm"');
    assert.deepEqual(JSON.parse(answer.body), { errors: [{ code: 'UNAUTHORIZED', message: 'authentication required', detail: null }] });
  }
});

test('authenticated: what is asked and allowed, across several scope parameters and space-separated scopes', async () => {
  const query = withService('repository:team/app:pull,push repository:team/base:pull', 'registry:catalog:*', 'repository:BAD NAME:pull', 'garbage');
  const answer = await answerTokenRequest(query, basic('alice', 'wonderland'), ctx('private'));
  assert.equal(answer.status, 200);
  assert.equal(answer.subject, 'alice');
  const v = tokenOf(answer.body).verdict;
  assert.ok(v.ok);
  assert.deepEqual(v.access, [
    { type: 'repository', name: 'team/app', actions: ['pull', 'push'] },
    { type: 'repository', name: 'team/base', actions: ['pull'] },
    { type: 'registry', name: 'catalog', actions: ['*'] },
  ]);
});

test('repeated scopes for one repository are merged', async () => {
  const answer = await answerTokenRequest(withService('repository:a:pull', 'repository:a:push'), basic('alice', 'wonderland'), ctx('read-public'));
  const v = tokenOf(answer.body).verdict;
  assert.ok(v.ok);
  assert.deepEqual(v.access, [{ type: 'repository', name: 'a', actions: ['pull', 'push'] }]);
});

test('bearer or malformed credentials at the token endpoint → 401', async () => {
  const bearer = await answerTokenRequest(withService('repository:a:pull'), { kind: 'bearer', token: 'abc' }, ctx('read-public'));
  assert.equal(bearer.status, 401);
  assert.match(JSON.parse(bearer.body).errors[0].message, /Basic/);
  const malformed = await answerTokenRequest(withService('repository:a:pull'), { kind: 'malformed' }, ctx('read-public'));
  assert.equal(malformed.status, 401);
  assert.ok(malformed.headers['WWW-Authenticate']);
});

test('mode none: everything asked, credentials not even looked at', async () => {
  const strict = { verify: async () => assert.fail('no password check in mode none') };
  const answer = await answerTokenRequest(withService('repository:a:pull,push,delete'), basic('x', 'y'), ctx('none', { users: strict }));
  assert.equal(answer.status, 200);
  const v = tokenOf(answer.body).verdict;
  assert.ok(v.ok);
  assert.deepEqual(v.access, [{ type: 'repository', name: 'a', actions: ['pull', 'push', 'delete'] }]);
});

test('too many scopes → 400', async () => {
  const scopes = Array.from({ length: MAX_SCOPES + 1 }, (_, i) => `repository:r${i}:pull`);
  const answer = await answerTokenRequest(withService(scopes.join(' ')), anonymous, ctx('read-public'));
  assert.equal(answer.status, 400);
  const fits = await answerTokenRequest(withService(...scopes.slice(0, MAX_SCOPES).map((s) => s.replace(/r(\d+)/, 'x'.repeat(240) + '$1'))), basic('alice', 'wonderland'), ctx('private'));
  assert.equal(fits.status, 200);
});

test('a saturated verify pool → 429 with Retry-After', async () => {
  const busy = { verify: async () => Promise.reject(new VerifyBusyError()) };
  const answer = await answerTokenRequest(withService(), basic('alice', 'wonderland'), ctx('private', { users: busy }));
  assert.equal(answer.status, 429);
  assert.equal(answer.headers['Retry-After'], '1');
  assert.equal(JSON.parse(answer.body).errors[0].code, 'TOOMANYREQUESTS');
});

test('POST /token (OAuth2 form) → JSON 404', () => {
  const answer = answerTokenPost();
  assert.equal(answer.status, 404);
  assert.equal(JSON.parse(answer.body).errors[0].code, 'UNSUPPORTED');
});
