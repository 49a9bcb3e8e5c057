/**
 * The OIDC source against a real issuer on loopback over TLS (discovery, JWKS): what it accepts,
 * what it refuses and with which message, and how it treats the issuer's keys.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, createPublicKey } from 'node:crypto';
import { generateKeyPair, SignJWT } from 'jose';
import { Identifier } from '../../src/auth/identify.js';
import { OidcSource, type OidcConfig } from '../../src/auth/sources/oidc.js';
import type { Authentication } from '../../src/auth/sources/source.js';
import { defaultConfig } from '../../src/config/defaults.js';
import { createLogger } from '../../src/observe/logger.js';
import { githubClaims, gitlabClaims, startIssuer, type TestIssuer } from '../harness/oidc-issuer.js';
import { makeTestCa, type TestCa } from '../harness/tls-ca.js';
import { tableSource } from '../harness/identity.js';

const AUD = 'https://registry.example.test';
let ca: TestCa;
let github: TestIssuer;
let gitlab: TestIssuer;

before(async () => {
  ca = await makeTestCa();
  [github, gitlab] = await Promise.all([startIssuer(ca), startIssuer(ca)]);
});
after(async () => {
  await Promise.all([github.stop(), gitlab.stop()]);
  await ca.dispose();
});

function source(issuer: TestIssuer, over: Partial<OidcConfig> = {}, deps: { keyRefreshCooldownMs?: number } = {}): OidcSource {
  const config: OidcConfig = {
    type: 'oidc',
    name: 'github',
    issuer: issuer.url,
    audience: [AUD],
    require: { repository_owner: 'acme' },
    subject: '${repository}',
    groups: ['${repository_owner}'],
    ...over,
  };
  return new OidcSource(config, { logger: createLogger('silent'), ca: ca.certPem, ...deps });
}

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
const refusal = (answer: Authentication): string => (answer.ok ? 'accepted' : `${answer.reason}: ${answer.message}`);

test('a GitHub-shaped ID token becomes an identity built from its claims', async () => {
  const oidc = source(github);
  const answer = await oidc.authenticate('oidc', await github.mint(githubClaims(AUD)));
  assert.ok(answer.ok, refusal(answer));
  assert.equal(answer.identity.subject, 'acme/app');
  assert.equal(answer.identity.source, 'github');
  assert.deepEqual(answer.identity.groups, ['acme']);
  assert.equal(answer.identity.claims?.ref, 'refs/heads/main');
  assert.ok(answer.identity.expiresAt! > Date.now() && answer.identity.expiresAt! <= Date.now() + 301_000);
});

test('refused, each with what failed and never the token', async () => {
  const oidc = source(github);
  const good = await github.mint(githubClaims(AUD));
  const [header, payload, signature] = good.split('.') as [string, string, string];
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>;
  const now = Math.floor(Date.now() / 1000);
  const publicPem = createPublicKey({ key: github.signingKey() as never, format: 'jwk' }).export({ type: 'spki', format: 'pem' }).toString();
  const hsHeader = b64({ alg: 'HS256', typ: 'JWT', kid: JSON.parse(Buffer.from(header, 'base64url').toString()).kid });
  const hsToken = `${hsHeader}.${payload}.${createHmac('sha256', publicPem).update(`${hsHeader}.${payload}`).digest('base64url')}`;
  const stranger = await generateKeyPair('RS256');
  const unknownKid = await new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: 'not-published' }).sign(stranger.privateKey);
  const rows: [string, string, RegExp][] = [
    ['alg none', `${b64({ alg: 'none', typ: 'JWT' })}.${payload}.`, /^invalid: ID token refused: signed with "none", not one of RS256, ES256$/],
    ['HS256 signed with the public key', hsToken, /^invalid: ID token refused: signed with "HS256", not one of RS256, ES256$/],
    ['wrong audience', await github.mint(githubClaims('https://other.example')), /^invalid: ID token refused: its audience "https:\/\/other\.example" is not "https:\/\/registry\.example\.test"$/],
    ['expired', await github.mint(githubClaims(AUD), { expiresInSeconds: -120 }), /^invalid: ID token refused: expired at \d{4}-.*; fetch a new one from the issuer$/],
    ['nbf in the future', await github.mint({ ...githubClaims(AUD), nbf: now + 600 }), /^invalid: ID token refused: not valid before \d{4}-/],
    ['iat in the future', await github.mint({ ...githubClaims(AUD), iat: now + 600, nbf: now - 10 }), /^invalid: ID token refused: issued in the future/],
    ['tampered payload', `${header}.${b64({ ...claims, repository: 'acme/other' })}.${signature}`, /^invalid: ID token refused: the signature does not verify$/],
    ['unknown kid', unknownKid, /^invalid: ID token refused: signed with a key the issuer does not publish \(kid "not-published"\)$/],
    ['100 KB', `${header}.${'A'.repeat(100_000)}.${signature}`, /^invalid: ID token refused: 100\d+ bytes, more than any issuer's \(16384\)$/],
    ['a condition of the source', await github.mint(githubClaims(AUD, { repository: 'evil/app' })), /^invalid: ID token refused by oidc source "github": claim "repository_owner" is "evil", not "acme"$/],
    ['no claim for the subject', await github.mint({ ...githubClaims(AUD), repository: undefined }), /^invalid: ID token refused: no subject \(claim "repository" is missing/],
    ['not a JWT at all: not this source\'s', 'hunter2', /^unknown: /],
  ];
  for (const [what, token, expected] of rows) {
    const answer = await oidc.authenticate('oidc', token);
    assert.match(refusal(answer), expected, what);
    if (!answer.ok) assert.ok(!answer.message.includes(token.slice(0, 40)) || token === 'hunter2', `${what}: the message quotes the token`);
  }
});

test('GitLab: ids and booleans come as strings; "false" never meets true', async () => {
  const oidc = source(gitlab, { name: 'gitlab', require: { ref_protected: true, namespace_path: 'acme' }, subject: '${project_path}', groups: [] });
  const ok = await oidc.authenticate('oidc', await gitlab.mint(gitlabClaims(AUD)));
  assert.ok(ok.ok, refusal(ok));
  assert.equal(ok.identity.subject, 'acme/app');
  const refused = await oidc.authenticate('oidc', await gitlab.mint(gitlabClaims(AUD, { ref_protected: 'false' })));
  assert.equal(refusal(refused), 'invalid: ID token refused by oidc source "gitlab": claim "ref_protected" is "false", not true');
});

test('a token of another issuer goes down the chain, and the caller is told its issuer is not trusted', async () => {
  const people = tableSource({ alice: 'secret' });
  const identifier = new Identifier([source(github), people.source], defaultConfig().loginLimits);
  const outcome = await identifier.login('oidc', await gitlab.mint(githubClaims(AUD)), '127.0.0.1');
  assert.equal(outcome.ok ? 'accepted' : outcome.message, `ID token refused: its issuer "${gitlab.url}" is not one this registry trusts`);
  const alice = await identifier.login('alice', 'secret', '127.0.0.1');
  assert.ok(alice.ok, 'a person behind the oidc source still logs in');
  assert.equal(people.checks.count, 2, 'both reached the htpasswd stand-in');
  await identifier.close();
});

test('1,000 made-up key ids in a row cost the issuer at most a handful of key fetches', async () => {
  const oidc = source(github);
  const first = await oidc.authenticate('oidc', await github.mint(githubClaims(AUD)));
  assert.ok(first.ok);
  const before = github.jwksFetches();
  const stranger = await generateKeyPair('RS256');
  const claims = githubClaims(AUD);
  for (let i = 0; i < 1000; i++) {
    const forged = await new SignJWT({ ...claims, iss: github.url }).setProtectedHeader({ alg: 'RS256', kid: `made-up-${i}` }).setIssuedAt().setExpirationTime('5m').sign(stranger.privateKey);
    const answer = await oidc.authenticate('oidc', forged);
    assert.equal(answer.ok, false);
  }
  const fetched = github.jwksFetches() - before;
  assert.ok(fetched <= 3, `${fetched} key fetches for 1,000 unknown key ids`);
});

test('the issuer rotates its key: new tokens verify without a restart', async () => {
  const oidc = source(github, {}, { keyRefreshCooldownMs: 200 });
  assert.ok((await oidc.authenticate('oidc', await github.mint(githubClaims(AUD)))).ok);
  const kid = await github.rotate();
  await new Promise((resolve) => setTimeout(resolve, 250));
  const rotated = await oidc.authenticate('oidc', await github.mint(githubClaims(AUD), { kid }));
  assert.ok(rotated.ok, refusal(rotated));
});

test('the issuer down: keys fetched before keep verifying and the source says degraded; with none, logins are unavailable', async () => {
  const oidc = source(github, {}, { keyRefreshCooldownMs: 0 });
  assert.ok((await oidc.authenticate('oidc', await github.mint(githubClaims(AUD)))).ok);
  await github.stop();
  try {
    await oidc.keys.refresh(true);
    const answer = await oidc.authenticate('oidc', await github.mint(githubClaims(AUD)));
    assert.ok(answer.ok, refusal(answer));
    assert.equal(oidc.degraded().length, 1);
    assert.match(oidc.degraded()[0]!, /^oidc source "github": issuer unreachable \(.*\); using keys fetched /);
    const fresh = source(github);
    const unavailable = await fresh.authenticate('oidc', await github.mint(githubClaims(AUD)));
    assert.match(refusal(unavailable), /^unavailable: oidc source "github": cannot fetch the issuer's keys/);
    for (let i = 0; i < 5; i++) assert.match(refusal(await fresh.authenticate('oidc', await github.mint(githubClaims(AUD)))), /^unavailable: /);
    assert.equal(fresh.keys.fetches, 1, 'logins while the issuer is away do not each ask it again');
    assert.match(fresh.degraded()[0]!, /no keys: its ID tokens are refused/);
  } finally {
    await github.start();
  }
  await oidc.keys.refresh(true);
  assert.deepEqual(oidc.degraded(), []);
});

test('the limits: a genuine but refused ID token (expired) is no guess and counts for nobody; a tampered one counts', async () => {
  const limits = { ...defaultConfig().loginLimits, failuresPerUser: 3, failuresPerClient: 100 };
  const identifier = new Identifier([source(github)], limits);
  const expired = await github.mint(githubClaims(AUD), { expiresInSeconds: -120 });
  for (let i = 0; i < 10; i++) {
    const outcome = await identifier.login('oidc', expired, '192.0.2.7');
    assert.match(outcome.ok ? 'accepted' : outcome.message, /^ID token refused: expired at /, `attempt ${i + 1}`);
  }
  const good = await github.mint(githubClaims(AUD));
  assert.ok((await identifier.login('oidc', good, '192.0.2.7')).ok, 'another job on the same runner still logs in');
  const [header, payload, signature] = good.split('.') as [string, string, string];
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>;
  const reasons: string[] = [];
  for (let i = 0; i < 10; i++) {
    const tampered = `${header}.${b64({ ...claims, repository: `acme/other-${i}` })}.${signature}`;
    const outcome = await identifier.login('oidc', tampered, '192.0.2.8');
    reasons.push(outcome.ok ? 'ok' : outcome.reason);
  }
  assert.ok(reasons.includes('limited'), `forgeries are cut: ${reasons.join(', ')}`);
  await identifier.close();
});
