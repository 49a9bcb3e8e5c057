import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { AuthMode } from '../../src/config/types.js';
import { parseAuthorization, type Credentials } from '../../src/auth/credentials.js';
import { answerTokenPost, answerTokenRequest, MAX_SCOPES, type TokenEndpointContext } from '../../src/auth/token-endpoint.js';
import { TokenAuthority } from '../../src/auth/token.js';
import { VerifyBusyError } from '../../src/auth/verify-pool.js';
import { keyIdOf } from '../../src/state/signing-key.js';
import { Identifier } from '../../src/auth/identify.js';
import type { IdentitySource } from '../../src/auth/sources/source.js';
import { tableSource } from '../harness/identity.js';
import { defaultConfig } from '../../src/config/defaults.js';
import { AccessPolicy } from '../../src/access/policy.js';
import { AccessRules, rulesForMode } from '../../src/access/rules.js';
import type { AccessRuleConfig } from '../../src/config/types.js';

const SERVICE = 'registry.example.com';
const secret = randomBytes(32);
const authority = new TokenAuthority({ id: keyIdOf(secret), secret }, { ttlSeconds: 300, issuer: 'registry-gate' });
const identifierOf = (source: IdentitySource) => new Identifier([source], defaultConfig().loginLimits);

const noGroups = { groupsOf: (user: string | null) => new Set(user === 'alice' ? ['team-a'] : []) };
function policy(mode: AuthMode, publicCatalog = false, rules?: AccessRuleConfig[]) {
  return new AccessPolicy(new AccessRules(rules ?? rulesForMode(mode)), noGroups, publicCatalog);
}
function ctx(mode: AuthMode, extra: Partial<TokenEndpointContext> & { publicCatalog?: boolean; rules?: AccessRuleConfig[] } = {}): TokenEndpointContext {
  const { publicCatalog, rules, ...rest } = extra;
  const identifier = identifierOf(tableSource({ alice: 'wonderland' }).source);
  return { mode, policy: policy(mode, publicCatalog, rules), identifier, client: '192.0.2.1', authority, expectedService: SERVICE, realm: 'Registry realm', refresh: null, ...rest };
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
  const issuedTo = tokenOf(answer.body).verdict as { stamp: string; source: string };
  assert.deepEqual([issuedTo.stamp, issuedTo.source], ['stamp-of-wonderland', 'htpasswd'], 'the token carries the entry it was issued under, and the source that re-checks it');
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
    stamp: null,
    source: null,
    groups: [],
    token: null,
    claims: null,
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

test('private, anonymous: a token with no access (the /v2/ request then fails at once), never a 401', async () => {
  for (const query of [withService(), withService('repository:a:pull,push')]) {
    const answer = await answerTokenRequest(query, anonymous, ctx('private'));
    assert.equal(answer.status, 200);
    const v = tokenOf(answer.body).verdict;
    assert.ok(v.ok);
    assert.equal(v.subject, null);
    assert.ok(v.access.every((a) => a.actions.length === 0), JSON.stringify(v.access));
  }
});

test('a wrong password: 401 with the configured realm, and the user name noted for the audit log', async () => {
  const answer = await answerTokenRequest(withService(), basic('alice', 'guess'), ctx('private', { realm: 'ACME registry' }));
  assert.equal(answer.status, 401);
  assert.equal(answer.headers['WWW-Authenticate'], 'Basic realm="ACME registry"');
  assert.deepEqual(answer.failedLogin, { user: 'alice', reason: 'invalid username or password' });
  assert.deepEqual(JSON.parse(answer.body), { errors: [{ code: 'UNAUTHORIZED', message: 'invalid username or password', detail: null }] });
});

test('with access rules a token holds what was asked and what the first matching rule allows', async () => {
  const rules: AccessRuleConfig[] = [
    { who: ['authenticated'], repositories: ['${user}/**'], actions: ['*'] },
    { who: ['group:team-a'], repositories: ['team-a/**'], actions: ['pull', 'push'] },
    { who: ['*'], repositories: ['public/**'], actions: ['pull'] },
  ];
  const query = withService('repository:team-a/app:pull,push,delete', 'repository:alice/tool:pull,push,delete', 'repository:team-b/app:pull,push', 'repository:public/x:pull,push');
  const v = tokenOf((await answerTokenRequest(query, basic('alice', 'wonderland'), ctx('private', { rules }))).body).verdict;
  assert.ok(v.ok);
  assert.deepEqual(v.access, [
    { type: 'repository', name: 'team-a/app', actions: ['pull', 'push'] },
    { type: 'repository', name: 'alice/tool', actions: ['pull', 'push', 'delete'] },
    { type: 'repository', name: 'public/x', actions: ['pull'] },
  ]);
  const anon = tokenOf((await answerTokenRequest(query, anonymous, ctx('private', { rules }))).body).verdict;
  assert.ok(anon.ok);
  assert.deepEqual(anon.access, [{ type: 'repository', name: 'public/x', actions: ['pull'] }]);
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
  const strict = tableSource({}, { answer: async () => assert.fail('no password check in mode none') });
  const answer = await answerTokenRequest(withService('repository:a:pull,push,delete'), basic('x', 'y'), ctx('none', { identifier: identifierOf(strict.source) }));
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
  const busy = tableSource({}, { answer: () => Promise.reject(new VerifyBusyError()) });
  const answer = await answerTokenRequest(withService(), basic('alice', 'wonderland'), ctx('private', { identifier: identifierOf(busy.source) }));
  assert.equal(answer.status, 429);
  assert.equal(answer.headers['Retry-After'], '1');
  assert.equal(JSON.parse(answer.body).errors[0].code, 'TOOMANYREQUESTS');
});

test('POST /token, grant_type=password (containerd): the same token as GET with those credentials', async () => {
  const form = new URLSearchParams({ grant_type: 'password', username: 'alice', password: 'wonderland', service: SERVICE, scope: 'repository:a:pull,push', client_id: 'containerd-client' });
  const answer = await answerTokenPost(form, anonymous, ctx('private'));
  assert.equal(answer.status, 200);
  assert.equal(answer.subject, 'alice');
  const v = tokenOf(answer.body).verdict;
  assert.ok(v.ok);
  assert.deepEqual(v.access, [{ type: 'repository', name: 'a', actions: ['pull', 'push'] }]);

  const wrong = await answerTokenPost(new URLSearchParams({ grant_type: 'password', username: 'alice', password: 'x', service: SERVICE }), anonymous, ctx('private'));
  assert.equal(wrong.status, 401);
  assert.deepEqual(wrong.failedLogin, { user: 'alice', reason: 'invalid username or password' });
});

test('POST /token with another grant → 400, on which containerd falls back to GET', async () => {
  for (const grant of ['refresh_token', 'client_credentials', '']) {
    const answer = await answerTokenPost(new URLSearchParams({ grant_type: grant, refresh_token: 'r', service: SERVICE }), anonymous, ctx('private'));
    assert.equal(answer.status, 400, grant);
    assert.equal(JSON.parse(answer.body).errors[0].code, 'BAD_REQUEST');
  }
});

test('POST /token with an Authorization header: counted as on GET; with credentials in the form too, refused', async () => {
  const form = (extra: Record<string, string> = {}) => new URLSearchParams({ grant_type: 'password', service: SERVICE, scope: 'repository:a:pull,push', ...extra });
  const byHeader = await answerTokenPost(form(), basic('alice', 'wonderland'), ctx('private'));
  assert.equal(byHeader.status, 200);
  assert.equal(byHeader.subject, 'alice');
  const v = tokenOf(byHeader.body).verdict;
  assert.ok(v.ok);
  assert.deepEqual(v.access, [{ type: 'repository', name: 'a', actions: ['pull', 'push'] }]);

  const wrong = await answerTokenPost(form(), basic('alice', 'guess'), ctx('private'));
  assert.equal(wrong.status, 401);
  assert.deepEqual(wrong.failedLogin, { user: 'alice', reason: 'invalid username or password' });

  const both = await answerTokenPost(form({ username: 'mallory', password: 'x' }), basic('alice', 'wonderland'), ctx('private'));
  assert.equal(both.status, 400);
  assert.match(JSON.parse(both.body).errors[0].message, /both in the Authorization header and in the form/);
  assert.equal(both.subject, null);
});
