/**
 * Refresh tokens at the token endpoint: handed out to offline requests (docker login), redeemed
 * with grant_type=refresh_token, refused once the identity behind them is gone or changed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AccessPolicy } from '../../src/access/policy.js';
import { AccessRules, rulesForMode } from '../../src/access/rules.js';
import { parseAuthorization, type Credentials } from '../../src/auth/credentials.js';
import { Identifier } from '../../src/auth/identify.js';
import { FileRefreshStore, RefreshTokens } from '../../src/auth/refresh-tokens.js';
import type { IdentitySource } from '../../src/auth/sources/source.js';
import { answerTokenPost, answerTokenRequest, type TokenEndpointContext } from '../../src/auth/token-endpoint.js';
import { TokenAuthority } from '../../src/auth/token.js';
import { defaultConfig } from '../../src/config/defaults.js';
import { keyIdOf } from '../../src/state/signing-key.js';
import { tableSource } from '../harness/identity.js';

const SERVICE = 'registry.example.com';
const key = randomBytes(32);
const authority = new TokenAuthority({ id: keyIdOf(key), secret: key }, { ttlSeconds: 300, issuer: 'registry-gate' });
const basic = (user: string, password: string): Credentials => parseAuthorization(`Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`);
const DOCKER_LOGIN = new URLSearchParams({ account: 'alice', client_id: 'docker', offline_token: 'true', service: SERVICE });

async function world(options: { days?: number; limit?: number | null; now?: () => number; sources?: IdentitySource[] } = {}) {
  const passwords: Record<string, string> = { alice: 'wonderland' };
  const people = tableSource(passwords);
  const stateDir = await mkdtemp(path.join(tmpdir(), 'rg-refresh-'));
  const refresh = new RefreshTokens(await FileRefreshStore.open(stateDir), options.days ?? 30, () => options.limit ?? null, options.now);
  const identifier = new Identifier(options.sources ?? [people.source], defaultConfig().loginLimits);
  const ctx: TokenEndpointContext = {
    mode: 'private',
    policy: new AccessPolicy(new AccessRules(rulesForMode('private')), { groupsOf: () => new Set<string>() }, false),
    identifier,
    client: '192.0.2.1',
    authority,
    expectedService: SERVICE,
    realm: 'Registry realm',
    refresh,
  };
  const redeem = (token: string, scope = 'repository:alice/app:pull,push') =>
    answerTokenPost(new URLSearchParams({ grant_type: 'refresh_token', refresh_token: token, client_id: 'docker', service: SERVICE, scope }), { kind: 'none' }, ctx);
  return { passwords, ctx, stateDir, redeem, close: () => identifier.close() };
}

test('docker login gets a refresh token; later requests with it get registry tokens for the same user', async (t) => {
  const w = await world();
  t.after(w.close);
  const login = await answerTokenRequest(DOCKER_LOGIN, basic('alice', 'wonderland'), w.ctx);
  assert.equal(login.status, 200);
  const { refresh_token: refreshToken } = JSON.parse(login.body) as { refresh_token: string };
  assert.match(refreshToken, /^rgr_[A-Za-z0-9_-]{43}$/);
  const plain = await answerTokenRequest(new URLSearchParams({ service: SERVICE }), basic('alice', 'wonderland'), w.ctx);
  assert.equal(JSON.parse(plain.body).refresh_token, undefined, 'only offline requests get one');
  const anonymous = await answerTokenRequest(DOCKER_LOGIN, { kind: 'none' }, w.ctx);
  assert.equal(JSON.parse(anonymous.body).refresh_token, undefined, 'anonymous callers get none');

  const used = await w.redeem(refreshToken);
  assert.equal(used.status, 200, used.body);
  assert.equal(used.subject, 'alice');
  const body = JSON.parse(used.body) as { token: string; refresh_token: string };
  assert.equal(body.refresh_token, refreshToken, 'the same refresh token comes back');
  const verdict = authority.verify(body.token, SERVICE);
  assert.ok(verdict.ok && verdict.subject === 'alice' && verdict.access[0]!.actions.join() === 'pull,push');

  const files = readdirSync(path.join(w.stateDir, 'refresh-tokens'));
  assert.equal(files.length, 1);
  const stored = readFileSync(path.join(w.stateDir, 'refresh-tokens', files[0]!), 'utf8');
  assert.ok(!stored.includes(refreshToken.slice(4)), 'only a hash is stored');
  assert.equal(statSync(path.join(w.stateDir, 'refresh-tokens', files[0]!)).mode & 0o777, 0o600);
});

test('refused once the identity is gone or changed, or the token expired; nothing else accepted', async (t) => {
  let now = Date.now();
  const w = await world({ now: () => now, days: 1 });
  t.after(w.close);
  const take = async (): Promise<string> => JSON.parse((await answerTokenRequest(DOCKER_LOGIN, basic('alice', 'wonderland'), w.ctx)).body).refresh_token;
  const message = async (token: string): Promise<string> => {
    const answer = await w.redeem(token);
    assert.equal(answer.status, 401);
    return JSON.parse(answer.body).errors[0].message as string;
  };

  const first = await take();
  w.passwords.alice = 'changed';
  assert.equal(await message(first), 'refresh token no longer valid: the password of "alice" changed; log in again');
  w.passwords.alice = 'wonderland';
  assert.equal((await w.redeem(first)).status, 200, 'the same password again: valid again (the stamp is the entry)');
  delete w.passwords.alice;
  assert.equal(await message(first), 'refresh token no longer valid: user "alice" no longer exists; log in again');
  w.passwords.alice = 'wonderland';

  const second = await take();
  now += 86_400_000 + 1000;
  assert.match(await message(second), /^refresh token expired at \d{4}-.*; log in again$/);
  assert.equal(await message(`rgr_${'A'.repeat(43)}`), 'unknown or expired refresh token; log in again');
  assert.equal(await message('not-a-token'), 'not a refresh token of this registry; log in again');
});

test('a source may bound how long its logins are refreshed (an oidc source\'s maxJobMinutes)', async (t) => {
  let now = Date.now();
  const w = await world({ now: () => now, limit: 120 });
  t.after(w.close);
  const token = JSON.parse((await answerTokenRequest(DOCKER_LOGIN, basic('alice', 'wonderland'), w.ctx)).body).refresh_token as string;
  now += 60_000;
  assert.equal((await w.redeem(token)).status, 200);
  now += 61_000;
  assert.equal((await w.redeem(token)).status, 401);
});

test('refresh tokens off (refreshTokenDays 0): the grant is refused as before, and containerd falls back to GET', async () => {
  const w = await world();
  const answer = await answerTokenPost(new URLSearchParams({ grant_type: 'refresh_token', refresh_token: 'r', service: SERVICE }), { kind: 'none' }, { ...w.ctx, refresh: null });
  assert.equal(answer.status, 400);
  assert.match(JSON.parse(answer.body).errors[0].message, /refresh tokens are off: auth\.refreshTokenDays is 0/);
  await w.close();
});
