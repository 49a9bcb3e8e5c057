/**
 * Access tokens as decisions and as a source: what a token may do (its scopes ∩ its owner's
 * rights, both enforced), how it logs in, how it stops (revoked, expired, owner gone) — through
 * the real file store, the identify chain, the token endpoint and the gate, no HTTP.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { AccessPolicy } from '../../src/access/policy.js';
import { AccessRules, subjectProblem } from '../../src/access/rules.js';
import { parseScope, ScopeLimit } from '../../src/access/token-scope.js';
import { nameProblem, parseExpiry, secretMatches, newRecord } from '../../src/auth/access-tokens/record.js';
import { FileTokenStore } from '../../src/auth/access-tokens/store.js';
import { TokenManager } from '../../src/auth/access-tokens/manage.js';
import { TokensSource } from '../../src/auth/sources/tokens.js';
import { Identifier } from '../../src/auth/identify.js';
import { AuthGate } from '../../src/auth/gate.js';
import { TokenAuthority } from '../../src/auth/token.js';
import { answerTokenPost, answerTokenRequest } from '../../src/auth/token-endpoint.js';
import { FileRefreshStore, RefreshTokens } from '../../src/auth/refresh-tokens.js';
import { parseAuthorization } from '../../src/auth/credentials.js';
import { defaultConfig } from '../../src/config/defaults.js';
import { keyIdOf } from '../../src/state/signing-key.js';
import { classifyRequest } from '../../src/registry/route.js';
import { registryParams } from '../../src/registry/inputs.js';
import type { Access } from '../../src/registry/scope.js';
import type { IdentitySource } from '../../src/auth/sources/source.js';
import { tableSource } from '../harness/identity.js';

const DAY = 86_400_000;
const NOW = Date.parse('2026-12-06T12:00:00Z');
const repo = (name: string, ...actions: string[]): Access => ({ type: 'repository', name, actions });

test('scopes, names and expiry: what the CLI and the API accept, with the reason when not', () => {
  assert.deepEqual(parseScope('team-a/**:pull,push'), { ok: true, scope: { repositories: 'team-a/**', actions: ['pull', 'push'] } });
  assert.deepEqual(parseScope('${user}/**:*'), { ok: true, scope: { repositories: '${user}/**', actions: ['*'] } });
  const refused: [string, RegExp][] = [
    ['team-a/**', /must be REPOSITORIES:ACTIONS/],
    [':pull', /must be REPOSITORIES:ACTIONS/],
    ['team-a/**:write', /unknown action "write"/],
    ['team a:pull', /may only contain/],
    ['x/$HOME:pull', /uses "\$"/],
  ];
  for (const [text, reason] of refused) {
    const parsed = parseScope(text);
    assert.ok(!parsed.ok && reason.test(parsed.reason), `${text}: ${JSON.stringify(parsed)}`);
  }
  for (const good of ['ci', 'ci-builder', 'deploy.prod', 'Robot_7']) assert.equal(nameProblem(good), null, good);
  for (const bad of ['robot$ci', '', '-x', 'a b', 'a:b', 'x'.repeat(65), 'ü']) assert.notEqual(nameProblem(bad), null, bad);
  assert.deepEqual(parseExpiry('30d', NOW, 365), { ok: true, expires: NOW + 30 * DAY });
  assert.deepEqual(parseExpiry('12h', NOW, 365), { ok: true, expires: NOW + DAY / 2 });
  assert.deepEqual(parseExpiry('2027-01-31', NOW, 365), { ok: true, expires: Date.parse('2027-01-31T00:00:00Z') });
  for (const [text, reason] of [['366d', /more than 365 days/], ['2026-01-01', /not in the future/], ['never', /must be a number of days/], ['0d', /not in the future/]] as const) {
    const parsed = parseExpiry(text, NOW, 365);
    assert.ok(!parsed.ok && reason.test(parsed.reason), `${text}: ${JSON.stringify(parsed)}`);
  }
  assert.equal(subjectProblem('token:ci'), null);
});

test('a token may do what its scopes AND its owner may: a table', () => {
  const rules = new AccessRules([
    { who: ['token:frozen'], repositories: ['**'], actions: [] },
    { who: ['group:team-a'], repositories: ['team-a/**'], actions: ['pull', 'push', 'delete'] },
    { who: ['authenticated'], repositories: ['${user}/**'], actions: ['*'] },
  ]);
  const policy = new AccessPolicy(rules, { groupsOf: (u) => new Set(u === 'alice' ? ['team-a'] : []) }, false);
  const token = (name: string, ...scopes: string[]) => ({ name, limit: new ScopeLimit(scopes.map((s) => (parseScope(s) as { ok: true; scope: never }).scope)) });
  const alice = policy.caller('alice');
  const pullOnly = policy.caller('alice', [], token('ci', 'team-a/**:pull'));
  const own = policy.caller('alice', [], token('mine', '${user}/**:push,pull'));
  const wide = policy.caller('bob', [], token('wide', '**:*'));
  const frozen = policy.caller('alice', [], token('frozen', '**:*'));
  const rows: [string, ReturnType<typeof policy.caller>, Access, boolean][] = [
    ['alice herself pushes to team-a', alice, repo('team-a/app', 'push'), true],
    ['her pull-only token pulls team-a', pullOnly, repo('team-a/app', 'pull'), true],
    ['her pull-only token may not push there though she may', pullOnly, repo('team-a/app', 'push'), false],
    ['nor pull outside its scope', pullOnly, repo('alice/x', 'pull'), false],
    ['${user} in a scope is the owner', own, repo('alice/x', 'push'), true],
    ['…and no one else', own, repo('bob/x', 'push'), false],
    ['a wide scope never exceeds its owner', wide, repo('team-a/app', 'pull'), false],
    ['…who may do anything in bob/**', wide, repo('bob/app', 'delete'), true],
    ['rules can name a token: token:frozen is shut', frozen, repo('alice/x', 'pull'), false],
  ];
  for (const [what, caller, access, allowed] of rows) {
    assert.equal(policy.decide(caller, access).ok, allowed, what);
    assert.equal(policy.allowed(caller, access).length === access.actions.length, allowed, `${what} (what a token endpoint grants)`);
  }
  const refused = policy.decide(pullOnly, repo('team-a/app', 'push'));
  assert.ok(!refused.ok && refused.reason === 'access token "ci" is limited to team-a/**:pull');
  assert.equal(policy.mayDoEverything(policy.caller('root', [], token('r', 'x/**:*'))), false);
});

async function world(opts: { people?: IdentitySource } = {}) {
  const dir = await mkdtemp(path.join(tmpdir(), 'rg-tokens-'));
  let now = NOW;
  const clock = () => now;
  const people = opts.people ?? tableSource({ alice: 'alice-pw', bob: 'bob-pw', root: 'root-pw' }, { groups: { root: ['admins'], alice: ['team-a'] } }).source;
  const store = await FileTokenStore.open(dir, { logger: null, follow: true });
  const source = new TokensSource(
    { type: 'tokens', maxDays: 90, adminGroup: 'admins' },
    store,
    (owner) => people.lookup(owner),
    (owner) => people.currentStamp(owner) === null,
    clock,
  );
  const identifier = new Identifier([people, source], defaultConfig().loginLimits);
  const manager = new TokenManager(source, clock);
  const policy = new AccessPolicy(
    new AccessRules([
      { who: ['group:team-a'], repositories: ['team-a/**'], actions: ['pull', 'push'] },
      { who: ['authenticated'], repositories: ['${user}/**'], actions: ['*'] },
    ]),
    { groupsOf: () => new Set<string>() },
    false,
  );
  const secret = randomBytes(32);
  const authority = new TokenAuthority({ id: keyIdOf(secret), secret }, { ttlSeconds: 300, issuer: 'registry-gate' });
  const gate = new AuthGate({ ...defaultConfig().auth, mode: 'private' }, identifier, authority, policy);
  return {
    dir,
    store,
    source,
    identifier,
    manager,
    policy,
    authority,
    gate,
    later: (ms: number) => (now += ms),
    close: async () => {
      await identifier.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

const ALICE = { user: 'alice', groups: new Set(['team-a']) };
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const SERVICE = { realm: 'https://registry.test/token', service: 'registry.test' };
const push = (repository: string) => classifyRequest('PUT', `/v2/${repository}/manifests/t`, registryParams(''));
const pull = (repository: string) => classifyRequest('GET', `/v2/${repository}/manifests/t`, registryParams(''));

test('stored as a hash only; the secret logs in as its owner with the owner\'s groups; wrong, expired, unknown', async (t) => {
  const w = await world();
  t.after(w.close);
  const made = await w.manager.create(ALICE, { name: 'ci', scopes: ['team-a/**:pull'], expires: '30d' });
  assert.ok(made.ok);
  const secret = made.value.secret;
  assert.match(secret, /^rgt_[A-Za-z0-9_-]{43}$/);
  const file = await readFile(path.join(w.dir, 'tokens', 'ci.json'), 'utf8');
  assert.ok(!file.includes(secret) && !file.includes(secret.slice(4, 20)), 'the file holds no part of the secret');
  assert.equal((await stat(path.join(w.dir, 'tokens', 'ci.json'))).mode & 0o777, 0o600);

  const ok = await w.identifier.login('ci', secret, '192.0.2.1');
  assert.ok(ok.ok && ok.identity.subject === 'alice' && ok.identity.token?.name === 'ci' && ok.identity.groups.includes('team-a'), JSON.stringify(ok));
  const rows: [string, string, string, string][] = [
    ['wrong secret', 'ci', `rgt_${'A'.repeat(43)}`, 'invalid'],
    ['her password on the token name', 'ci', 'alice-pw', 'invalid'],
    ['the secret on her name', 'alice', secret, 'invalid'],
    ['unknown token name', 'nope', secret, 'invalid'],
  ];
  for (const [what, user, password, reason] of rows) {
    const outcome = await w.identifier.login(user, password, `192.0.2.${rows.indexOf(rows.find((r) => r[0] === what)!) + 10}`);
    assert.ok(!outcome.ok && outcome.reason === reason, `${what}: ${JSON.stringify(outcome)}`);
  }
  w.later(31 * DAY);
  const expired = await w.identifier.login('ci', secret, '192.0.2.50');
  assert.ok(!expired.ok && /access token "ci" expired/.test(expired.message), JSON.stringify(expired));
  assert.ok(secretMatches(newRecord({ name: 'x', owner: 'a', scopes: [], expires: NOW + DAY, createdBy: 'cli', now: NOW }).record, 'rgt_x') === false);
});

test('a token narrower than its owner: the endpoint grants less, the gate refuses with a message naming the token', async (t) => {
  const w = await world();
  t.after(w.close);
  const made = await w.manager.create(ALICE, { name: 'ci', scopes: ['team-a/**:pull'], expires: '30d' });
  assert.ok(made.ok);
  const ctx = { mode: 'private' as const, policy: w.policy, identifier: w.identifier, client: '192.0.2.1', authority: w.authority, expectedService: SERVICE.service, realm: 'r', refresh: null };
  const answer = await answerTokenRequest(new URLSearchParams([['scope', 'repository:team-a/app:pull,push']]), parseAuthorization(basic('ci', made.value.secret)), ctx);
  assert.equal(answer.status, 200);
  assert.equal(answer.token, 'ci');
  const issued = w.authority.verify(JSON.parse(answer.body).token, SERVICE.service);
  assert.ok(issued.ok && issued.token === 'ci' && issued.subject === 'alice');
  assert.deepEqual(issued.ok && issued.access, [repo('team-a/app', 'pull')], 'pull only, though alice may push');

  const bearer = { authorization: `Bearer ${JSON.parse(answer.body).token}` };
  assert.equal((await w.gate.check(pull('team-a/app'), bearer, SERVICE, '192.0.2.1')).ok, true);
  const refused = await w.gate.check(push('team-a/app'), bearer, SERVICE, '192.0.2.1');
  assert.ok(!refused.ok && refused.code === 'DENIED' && refused.token === 'ci', JSON.stringify(refused));
  assert.equal(refused.message, 'access token "ci" may not push to team-a/app (access token "ci" is limited to team-a/**:pull)');
  const basicPush = await w.gate.check(push('team-a/app'), { authorization: basic('ci', made.value.secret) }, SERVICE, '192.0.2.1');
  assert.ok(!basicPush.ok && basicPush.code === 'DENIED', 'Basic with the token: the same refusal');
  const herself = await w.gate.check(push('team-a/app'), { authorization: basic('alice', 'alice-pw') }, SERVICE, '192.0.2.1');
  assert.ok(herself.ok, 'alice herself may push');
});

test('revoked, expired or owner gone: registry tokens issued from it stop at once, remembered logins too', async (t) => {
  const passwords: Record<string, string> = { alice: 'alice-pw', bob: 'bob-pw' };
  const w = await world({ people: tableSource(passwords).source });
  t.after(w.close);
  const issueFor = async (name: string) => {
    const made = await w.manager.create({ user: null, groups: new Set() }, { name, owner: name.startsWith('b') ? 'bob' : 'alice', scopes: ['**:*'], expires: '7d' });
    assert.ok(made.ok, JSON.stringify(made));
    const login = await w.identifier.login(name, made.value.secret, '192.0.2.1');
    assert.ok(login.ok);
    const registryToken = w.authority.issue({ subject: login.identity.subject, service: SERVICE.service, access: [repo(`${login.identity.subject}/x`, 'pull')], source: 'tokens', stamp: login.identity.stamp!, token: name }).token;
    const check = () => w.gate.check(pull(`${login.identity.subject}/x`), { authorization: `Bearer ${registryToken}` }, SERVICE, '192.0.2.1');
    assert.equal((await check()).ok, true);
    return { secret: made.value.secret, check };
  };
  const revoked = await issueFor('a-revoked');
  assert.ok((await w.manager.revoke({ user: null, groups: new Set() }, 'a-revoked')).ok);
  const afterRevoke = await revoked.check();
  assert.ok(!afterRevoke.ok && afterRevoke.message === 'token no longer valid: access token "a-revoked" was revoked or has expired; log in again');
  assert.ok(!(await w.identifier.login('a-revoked', revoked.secret, '192.0.2.1')).ok, 'the remembered login is asked again');

  const remade = await issueFor('a-remade');
  await w.store.revoke('a-remade');
  const again = await w.manager.create({ user: null, groups: new Set() }, { name: 'a-remade', owner: 'alice', scopes: ['**:*'], expires: '7d' });
  assert.ok(again.ok);
  assert.equal((await remade.check()).ok, false, 'a token made again under the same name is another token');

  const bobs = await issueFor('b-owner-gone');
  delete passwords.bob;
  assert.equal((await bobs.check()).ok, false, 'bob is gone from htpasswd: his tokens with him');

  const expiring = await issueFor('a-expiring');
  w.later(8 * DAY);
  assert.equal((await expiring.check()).ok, false);
});

test('the file store: one file per token, kept in step with changes made by another process within a second', async (t) => {
  const w = await world();
  t.after(w.close);
  const other = await FileTokenStore.open(w.dir, { logger: null, follow: false });
  const { record } = newRecord({ name: 'from-cli', owner: 'alice', scopes: [{ repositories: '**', actions: ['pull'] }], expires: Date.now() + DAY, createdBy: 'cli', now: Date.now() });
  assert.equal(await other.create(record), true);
  assert.equal(await other.create(record), false, 'a name is taken once');
  const seen = async (present: boolean) => {
    const until = Date.now() + 1000;
    while (Date.now() < until && (w.store.get('from-cli') !== undefined) !== present) await new Promise((r) => setTimeout(r, 20));
    return (w.store.get('from-cli') !== undefined) === present;
  };
  assert.ok(await seen(true), 'seen by the proxy within a second');
  w.store.markUsed('from-cli', Date.now());
  await new Promise((r) => setTimeout(r, 100));
  assert.ok((await other.lastUsed('from-cli')) !== null, 'last used is written');
  assert.equal(await other.revoke('from-cli'), true);
  assert.ok(await seen(false), 'revoked by another process: gone within a second');
  assert.deepEqual((await readdir(path.join(w.dir, 'tokens'))).filter((f) => !f.startsWith('.')), [], 'nothing left behind');
  await other.close();
});

test('who manages which tokens: people their own, admins anyone\'s, names that are people refused', async (t) => {
  const w = await world();
  t.after(w.close);
  const ROOT = { user: 'root', groups: new Set(['admins']) };
  const BOB = { user: 'bob', groups: new Set<string>() };
  assert.ok((await w.manager.create(ALICE, { name: 'alice-ci', scopes: ['alice/**:push'], expires: '30d' })).ok);
  const rows: [string, Awaited<ReturnType<typeof w.manager.create>>, string][] = [
    ['bob for alice', await w.manager.create(BOB, { name: 'b1', owner: 'alice', scopes: ['**:pull'], expires: '1d' }), 'DENIED'],
    ['a taken name', await w.manager.create(BOB, { name: 'alice-ci', scopes: ['**:pull'], expires: '1d' }), 'CONFLICT'],
    ['a person\'s name', await w.manager.create(BOB, { name: 'alice', scopes: ['**:pull'], expires: '1d' }), 'CONFLICT'],
    ['no expiry within maxDays', await w.manager.create(BOB, { name: 'b2', scopes: ['**:pull'], expires: '91d' }), 'BAD_REQUEST'],
    ['no scope', await w.manager.create(BOB, { name: 'b3', scopes: [], expires: '1d' }), 'BAD_REQUEST'],
    ['an owner nobody knows', await w.manager.create(ROOT, { name: 'r1', owner: 'ghost', scopes: ['**:pull'], expires: '1d' }), 'BAD_REQUEST'],
  ];
  for (const [what, answer, code] of rows) assert.ok(!answer.ok && answer.code === code, `${what}: ${JSON.stringify(answer)}`);
  assert.ok((await w.manager.create(ROOT, { name: 'for-bob', owner: 'bob', scopes: ['bob/**:pull'], expires: '1d' })).ok, 'an admin creates for anyone');
  assert.deepEqual((await w.manager.list(BOB)).map((v) => v.name), ['for-bob']);
  assert.deepEqual((await w.manager.list(ALICE)).map((v) => v.name), ['alice-ci']);
  assert.deepEqual((await w.manager.list(ROOT)).map((v) => v.name), ['alice-ci', 'for-bob']);
  assert.ok(!(await w.manager.list(ROOT)).some((v) => 'hash' in v || 'secret' in v), 'a list never carries a hash or secret');
  const bobRevokes = await w.manager.revoke(BOB, 'alice-ci');
  assert.ok(!bobRevokes.ok && bobRevokes.code === 'NOT_FOUND', 'someone else\'s token is not found');
  assert.ok(w.store.get('alice-ci'), 'and still there');
  assert.ok((await w.manager.revoke(ROOT, 'alice-ci')).ok);
});

test('docker login with an access token: its refresh token ends with the access token', async (t) => {
  const w = await world();
  t.after(w.close);
  const made = await w.manager.create(ALICE, { name: 'ci-refresh', scopes: ['team-a/**:pull'], expires: '30d' });
  assert.ok(made.ok);
  const refresh = new RefreshTokens(await FileRefreshStore.open(w.dir), 30, () => null, () => NOW);
  const ctx = { mode: 'private' as const, policy: w.policy, identifier: w.identifier, client: '192.0.2.1', authority: w.authority, expectedService: SERVICE.service, realm: 'r', refresh };
  const login = await answerTokenRequest(new URLSearchParams({ offline_token: 'true', client_id: 'docker' }), parseAuthorization(basic('ci-refresh', made.value.secret)), ctx);
  const refreshToken = JSON.parse(login.body).refresh_token as string;
  const redeem = () => answerTokenPost(new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken, scope: 'repository:team-a/app:pull,push' }), { kind: 'none' }, ctx);
  const used = await redeem();
  assert.equal(used.status, 200);
  assert.equal(used.token, 'ci-refresh');
  const issued = w.authority.verify(JSON.parse(used.body).token, SERVICE.service);
  assert.ok(issued.ok && issued.token === 'ci-refresh');
  assert.deepEqual(issued.ok && issued.access.map((a) => a.actions), [['pull']], 'still bounded by the token\'s scopes');
  assert.ok((await w.manager.revoke(ALICE, 'ci-refresh')).ok);
  const refused = await redeem();
  assert.equal(refused.status, 401);
  assert.equal(JSON.parse(refused.body).errors[0].message, 'refresh token no longer valid: access token "ci-refresh" was revoked or has expired; log in again');
});
