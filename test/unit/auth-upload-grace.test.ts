/**
 * Pushes that outlast their token, as decisions: which requests are inside an upload session,
 * tokens never shorter than the specification's 60 s, and an expired token accepted for the
 * session's requests only (within the bound), with the source and rules asked again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { AuthGate, UPLOAD_SESSION_GRACE_SECONDS } from '../../src/auth/gate.js';
import { Identifier } from '../../src/auth/identify.js';
import { TokenAuthority } from '../../src/auth/token.js';
import { MIN_TOKEN_SECONDS } from '../../src/registry/token-spec.js';
import { AccessPolicy } from '../../src/access/policy.js';
import { AccessRules } from '../../src/access/rules.js';
import { defaultConfig } from '../../src/config/defaults.js';
import { keyIdOf } from '../../src/state/signing-key.js';
import { classifyRequest } from '../../src/registry/route.js';
import { registryParams } from '../../src/registry/inputs.js';
import { tableSource } from '../harness/identity.js';

const ID = '0b7f7a1e-59d5-4b7c-9a44-1c8f3c2d9e10';
const route = (method: string, path: string) => classifyRequest(method, path, registryParams(''));

test('which requests are inside an upload session already opened', () => {
  const rows: [string, string, boolean][] = [
    ['PATCH', `/v2/team/app/blobs/uploads/${ID}`, true],
    ['PUT', `/v2/team/app/blobs/uploads/${ID}`, true],
    ['GET', `/v2/team/app/blobs/uploads/${ID}`, true],
    ['DELETE', `/v2/team/app/blobs/uploads/${ID}`, false],
    ['POST', '/v2/team/app/blobs/uploads/', false],
    ['POST', '/v2/team/app/blobs/uploads', false],
    ['PUT', '/v2/team/app/manifests/v1', false],
    ['GET', `/v2/team/app/blobs/sha256:${'a'.repeat(64)}`, false],
  ];
  for (const [method, path, session] of rows) {
    const r = route(method, path);
    assert.equal(r.kind === 'repository' && r.session, session, `${method} ${path}`);
  }
});

function world() {
  let now = Date.parse('2026-12-06T12:00:00Z');
  const passwords: Record<string, string> = { alice: 'pw' };
  const source = tableSource(passwords).source;
  const secret = randomBytes(32);
  const authority = new TokenAuthority({ id: keyIdOf(secret), secret }, { ttlSeconds: 10, issuer: 'registry-gate', now: () => now });
  const policy = new AccessPolicy(new AccessRules([{ who: ['user:alice'], repositories: ['team/**'], actions: ['pull', 'push'] }]), { groupsOf: () => new Set<string>() }, false);
  const gate = new AuthGate({ ...defaultConfig().auth, mode: 'private' }, new Identifier([source], defaultConfig().loginLimits), authority, policy);
  const issued = authority.issue({ subject: 'alice', service: 'registry.test', access: [{ type: 'repository', name: 'team/app', actions: ['pull', 'push'] }], source: 'htpasswd', stamp: 'stamp-of-pw' });
  const check = (method: string, path: string) => gate.check(route(method, path), { authorization: `Bearer ${issued.token}` }, { realm: 'https://registry.test/token', service: 'registry.test' }, '192.0.2.1');
  return { issued, check, later: (s: number) => (now += s * 1000), passwords };
}

test('tokens live the specification\'s 60 s at least, whatever a shorter tokenTtlSeconds says', async () => {
  const w = world();
  assert.equal(w.issued.expires_in, MIN_TOKEN_SECONDS);
  w.later(30);
  assert.equal((await w.check('PUT', '/v2/team/app/manifests/v1')).ok, true, 'at 30 s: docker still uses it, and it is good');
  w.later(31);
  const expired = await w.check('PUT', '/v2/team/app/manifests/v1');
  assert.ok(!expired.ok && /invalid token \(expired\)/.test(expired.message));
});

test('an expired token goes on inside its upload session only, within the bound, re-checked', async () => {
  const w = world();
  w.later(MIN_TOKEN_SECONDS + 120);
  assert.equal((await w.check('PATCH', `/v2/team/app/blobs/uploads/${ID}`)).ok, true, 'a chunk two minutes after expiry');
  assert.equal((await w.check('PUT', `/v2/team/app/blobs/uploads/${ID}`)).ok, true, 'the final PUT');
  for (const [method, path] of [['POST', '/v2/team/app/blobs/uploads/'], ['PUT', '/v2/team/app/manifests/v1'], ['GET', '/v2/team/app/tags/list']]) {
    const refused = await w.check(method!, path!);
    assert.ok(!refused.ok && refused.code === 'UNAUTHORIZED', `${method} ${path}: a new upload, a manifest, a read need a live token`);
  }
  const elsewhere = await w.check('PATCH', `/v2/other/app/blobs/uploads/${ID}`);
  assert.ok(!elsewhere.ok, 'the token names team/app only');
  w.passwords.alice = 'changed';
  const changed = await w.check('PATCH', `/v2/team/app/blobs/uploads/${ID}`);
  assert.ok(!changed.ok && /password of "alice" changed/.test(changed.message), 'the source is asked again');
  w.passwords.alice = 'pw';
  w.later(UPLOAD_SESSION_GRACE_SECONDS);
  assert.equal((await w.check('PATCH', `/v2/team/app/blobs/uploads/${ID}`)).ok, false, 'past the bound: over');
});
