import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { covers, MAX_TOKEN_LENGTH, TokenAuthority } from '../../src/auth/token.js';
import { keyIdOf } from '../../src/state/signing-key.js';
import type { Access } from '../../src/registry/scope.js';

function makeKey() {
  const secret = randomBytes(32);
  return { id: keyIdOf(secret), secret };
}

function clock(start = Date.UTC(2030, 0, 1)) {
  let now = start;
  return { now: () => now, advance: (seconds: number) => (now += seconds * 1000) };
}

const SERVICE = 'registry.example.com';
const pullA: Access[] = [{ type: 'repository', name: 'team/a', actions: ['pull', 'push'] }];

function decodePart(token: string, index: number): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[index]!, 'base64url').toString('utf8'));
}

/** Re-sign arbitrary header/claims with a given secret (how an attacker holding a key would). */
function forge(header: object, claims: object, secret: Buffer | null): string {
  const input = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  const signature = secret ? createHmac('sha256', secret).update(input).digest('base64url') : '';
  return `${input}.${signature}`;
}

test('issue → verify round trip with Docker token fields and claims', () => {
  const key = makeKey();
  const c = clock();
  const authority = new TokenAuthority(key, { ttlSeconds: 300, issuer: 'registry-gate', now: c.now });
  const issued = authority.issue({ subject: 'alice', service: SERVICE, access: pullA });
  assert.equal(issued.access_token, issued.token);
  assert.equal(issued.expires_in, 300);
  assert.equal(issued.issued_at, '2030-01-01T00:00:00.000Z');

  assert.deepEqual(decodePart(issued.token, 0), { alg: 'HS256', typ: 'JWT', kid: key.id });
  const claims = decodePart(issued.token, 1);
  assert.equal(claims.iss, 'registry-gate');
  assert.equal(claims.sub, 'alice');
  assert.equal(claims.aud, SERVICE);
  assert.equal(claims.iat, Date.UTC(2030, 0, 1) / 1000);
  assert.equal(claims.nbf, claims.iat);
  assert.equal(claims.exp, (claims.iat as number) + 300);
  assert.equal(typeof claims.jti, 'string');
  assert.deepEqual(claims.access, pullA);

  const verdict = authority.verify(issued.token, SERVICE);
  assert.deepEqual(verdict, { ok: true, subject: 'alice', access: pullA, stamp: null, source: null, groups: [], token: null, claims: null, expiresAt: (claims.exp as number) * 1000 });
  const fromDirectory = authority.issue({ subject: 'alice', service: SERVICE, access: pullA, source: 'ldap', groups: ['team-b', 'team-a'] });
  assert.deepEqual([decodePart(fromDirectory.token, 1).src, decodePart(fromDirectory.token, 1).grp], ['ldap', ['team-a', 'team-b']]);
  const v = authority.verify(fromDirectory.token, SERVICE);
  assert.ok(v.ok && v.source === 'ldap' && v.groups.join() === 'team-a,team-b');
  const stamped = authority.issue({ subject: 'alice', service: SERVICE, access: pullA, stamp: 'abc' });
  assert.equal(decodePart(stamped.token, 1).stp, 'abc');
  assert.deepEqual((authority.verify(stamped.token, SERVICE) as { stamp: string }).stamp, 'abc');
});

test('anonymous tokens carry sub "" and verify to subject null; empty grants are left out', () => {
  const authority = new TokenAuthority(makeKey(), { ttlSeconds: 60, issuer: 'registry-gate' });
  const issued = authority.issue({ subject: null, service: SERVICE, access: [{ type: 'repository', name: 'x', actions: [] }] });
  assert.equal(decodePart(issued.token, 1).sub, '');
  assert.deepEqual(decodePart(issued.token, 1).access, []);
  const verdict = authority.verify(issued.token, SERVICE);
  assert.ok(verdict.ok);
  assert.equal(verdict.subject, null);
  assert.deepEqual(verdict.access, []);
});

test('a token with a changed payload is refused (signature)', () => {
  const key = makeKey();
  const authority = new TokenAuthority(key, { ttlSeconds: 300, issuer: 'registry-gate' });
  const [h, p, s] = authority.issue({ subject: 'mallory', service: SERVICE, access: pullA }).token.split('.');
  const claims = JSON.parse(Buffer.from(p!, 'base64url').toString());
  claims.access = [{ type: 'repository', name: 'team/secret', actions: ['pull', 'push', 'delete'] }];
  const tampered = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`;
  assert.deepEqual(authority.verify(tampered, SERVICE), { ok: false, reason: 'signature' });
  // one flipped signature character too
  const flipped = `${h}.${p}.${s!.slice(0, -2)}${s!.at(-2) === 'A' ? 'B' : 'A'}${s!.at(-1)}`;
  assert.deepEqual(authority.verify(flipped, SERVICE), { ok: false, reason: 'signature' });
});

test('expired tokens are refused; exp has no leeway', () => {
  const c = clock();
  const authority = new TokenAuthority(makeKey(), { ttlSeconds: 300, issuer: 'registry-gate', now: c.now });
  const { token } = authority.issue({ subject: 'alice', service: SERVICE, access: pullA });
  c.advance(299);
  assert.equal(authority.verify(token, SERVICE).ok, true); // now cached
  c.advance(1);
  assert.deepEqual(authority.verify(token, SERVICE), { ok: false, reason: 'expired' });
  // a fresh authority (no cache) says the same
  const other = new TokenAuthority((authority as unknown as { key: { id: string; secret: Buffer } }).key, { ttlSeconds: 300, issuer: 'registry-gate', now: c.now });
  assert.deepEqual(other.verify(token, SERVICE), { ok: false, reason: 'expired' });
});

test('nbf tolerates 30 s of clock skew between replicas, not more', () => {
  const key = makeKey();
  const issuerClock = clock();
  const verifierClock = clock();
  const issuer = new TokenAuthority(key, { ttlSeconds: 300, issuer: 'registry-gate', now: issuerClock.now });
  const verifier = new TokenAuthority(key, { ttlSeconds: 300, issuer: 'registry-gate', now: verifierClock.now });
  issuerClock.advance(30);
  assert.equal(verifier.verify(issuer.issue({ subject: 'a', service: SERVICE, access: pullA }).token, SERVICE).ok, true);
  issuerClock.advance(2);
  assert.deepEqual(verifier.verify(issuer.issue({ subject: 'a', service: SERVICE, access: pullA }).token, SERVICE), { ok: false, reason: 'not-yet-valid' });
});

test('a token for another service is refused, even when cached for ours', () => {
  const authority = new TokenAuthority(makeKey(), { ttlSeconds: 300, issuer: 'registry-gate' });
  const { token } = authority.issue({ subject: 'alice', service: SERVICE, access: pullA });
  assert.deepEqual(authority.verify(token, 'other.example.com'), { ok: false, reason: 'service' });
  assert.equal(authority.verify(token, SERVICE).ok, true);
  assert.deepEqual(authority.verify(token, 'other.example.com'), { ok: false, reason: 'service' });
});

test('a token signed with another key is refused (key id, and signature when the kid is faked)', () => {
  const ours = new TokenAuthority(makeKey(), { ttlSeconds: 300, issuer: 'registry-gate' });
  const theirKey = makeKey();
  const theirs = new TokenAuthority(theirKey, { ttlSeconds: 300, issuer: 'registry-gate' });
  const foreign = theirs.issue({ subject: 'alice', service: SERVICE, access: pullA }).token;
  assert.deepEqual(ours.verify(foreign, SERVICE), { ok: false, reason: 'key' });

  const claims = decodePart(foreign, 1);
  const fakedKid = forge({ alg: 'HS256', typ: 'JWT', kid: ours.keyId }, claims, theirKey.secret);
  assert.deepEqual(ours.verify(fakedKid, SERVICE), { ok: false, reason: 'signature' });
});

test('alg "none" and other algorithms are refused', () => {
  const key = makeKey();
  const authority = new TokenAuthority(key, { ttlSeconds: 300, issuer: 'registry-gate' });
  const claims = decodePart(authority.issue({ subject: 'root', service: SERVICE, access: pullA }).token, 1);
  // The classic alg-none token has an empty signature part: not even JWS-shaped for us.
  assert.deepEqual(authority.verify(forge({ alg: 'none', typ: 'JWT', kid: key.id }, claims, null), SERVICE), { ok: false, reason: 'malformed' });
  // With something in the signature part, the algorithm itself is what is refused — even when
  // the "signature" is a valid HMAC of our key (algorithm confusion).
  for (const alg of ['none', 'None', 'RS256', 'HS512', 'ES256']) {
    const token = forge({ alg, typ: 'JWT', kid: key.id }, claims, key.secret);
    assert.deepEqual(authority.verify(token, SERVICE), { ok: false, reason: 'signature' }, alg);
  }
  const missingAlg = forge({ typ: 'JWT', kid: key.id }, claims, key.secret);
  assert.deepEqual(authority.verify(missingAlg, SERVICE), { ok: false, reason: 'signature' });
});

test('a correctly signed token from another issuer is refused', () => {
  const key = makeKey();
  const authority = new TokenAuthority(key, { ttlSeconds: 300, issuer: 'registry-gate' });
  const claims = { ...decodePart(authority.issue({ subject: 'a', service: SERVICE, access: pullA }).token, 1), iss: 'someone-else' };
  assert.deepEqual(authority.verify(forge({ alg: 'HS256', typ: 'JWT', kid: key.id }, claims, key.secret), SERVICE), { ok: false, reason: 'issuer' });
});

test('malformed tokens, including oversize and bad claim types, are refused without throwing', () => {
  const key = makeKey();
  const authority = new TokenAuthority(key, { ttlSeconds: 300, issuer: 'registry-gate' });
  const good = decodePart(authority.issue({ subject: 'a', service: SERVICE, access: pullA }).token, 1);
  const header = { alg: 'HS256', typ: 'JWT', kid: key.id };
  const cases = [
    '',
    'abc',
    'a.b',
    'a.b.c.d',
    '!!.!!.!!',
    `${'a'.repeat(MAX_TOKEN_LENGTH)}.b.c`,
    `${Buffer.from('not json').toString('base64url')}.e30.sig`,
    forge(header, { ...good, exp: 'tomorrow' }, key.secret),
    forge(header, { ...good, access: 'everything' }, key.secret),
    forge(header, { ...good, access: [{ type: 'repository', name: 'x', actions: 'pull' }] }, key.secret),
    forge(header, { ...good, sub: 42 }, key.secret),
    forge(header, { ...good, aud: [1] }, key.secret),
    forge(header, [1, 2, 3], key.secret),
  ];
  for (const token of cases) {
    const verdict = authority.verify(token, SERVICE);
    assert.equal(verdict.ok, false, token.slice(0, 40));
    assert.ok(!verdict.ok && ['malformed', 'issuer'].includes(verdict.reason), `${token.slice(0, 40)} → ${JSON.stringify(verdict)}`);
  }
});

test('verification of a known token is a cache hit (no HMAC), and the cache is bounded', () => {
  const authority = new TokenAuthority(makeKey(), { ttlSeconds: 300, issuer: 'registry-gate', cacheSize: 2 });
  const tokens = [1, 2, 3].map((i) => authority.issue({ subject: `u${i}`, service: SERVICE, access: pullA }).token);
  let signs = 0;
  const original = (authority as unknown as { sign: (s: string) => Buffer }).sign.bind(authority);
  (authority as unknown as { sign: (s: string) => Buffer }).sign = (s: string) => {
    signs++;
    return original(s);
  };
  authority.verify(tokens[0]!, SERVICE);
  authority.verify(tokens[0]!, SERVICE);
  authority.verify(tokens[0]!, SERVICE);
  assert.equal(signs, 1);
  authority.verify(tokens[1]!, SERVICE);
  authority.verify(tokens[2]!, SERVICE); // evicts tokens[0]
  assert.equal(signs, 3);
  authority.verify(tokens[0]!, SERVICE);
  assert.equal(signs, 4);
  const cache = (authority as unknown as { cache: Map<string, unknown> }).cache;
  assert.equal(cache.size, 2);
});

test('the verdict is a copy: mutating it does not widen the cached token', () => {
  const authority = new TokenAuthority(makeKey(), { ttlSeconds: 300, issuer: 'registry-gate' });
  const { token } = authority.issue({ subject: 'a', service: SERVICE, access: [{ type: 'repository', name: 'x', actions: ['pull'] }] });
  const first = authority.verify(token, SERVICE);
  assert.ok(first.ok);
  first.access[0]!.actions.push('push');
  const second = authority.verify(token, SERVICE);
  assert.ok(second.ok);
  assert.deepEqual(second.access[0]!.actions, ['pull']);
});

test('covers: a token for repository A does not cover push to B', () => {
  const list: Access[] = [
    { type: 'repository', name: 'team/a', actions: ['pull', 'push'] },
    { type: 'repository', name: 'team/b', actions: ['pull'] },
    { type: 'registry', name: 'catalog', actions: ['*'] },
  ];
  assert.equal(covers(list, { type: 'repository', name: 'team/a', actions: ['push'] }), true);
  assert.equal(covers(list, { type: 'repository', name: 'team/a', actions: ['pull', 'push'] }), true);
  assert.equal(covers(list, { type: 'repository', name: 'team/b', actions: ['push'] }), false);
  assert.equal(covers(list, { type: 'repository', name: 'team/b', actions: ['pull', 'push'] }), false);
  assert.equal(covers(list, { type: 'repository', name: 'team/a', actions: ['delete'] }), false);
  assert.equal(covers(list, { type: 'repository', name: 'team/ab', actions: ['pull'] }), false);
  assert.equal(covers(list, { type: 'repository', name: 'team', actions: ['pull'] }), false);
  assert.equal(covers(list, { type: 'registry', name: 'catalog', actions: ['*'] }), true);
  assert.equal(covers(list, { type: 'repository', name: 'catalog', actions: ['pull'] }), false);
  assert.equal(covers(list, { type: 'repository', name: 'team/a', actions: [] }), false);
  assert.equal(covers([], { type: 'repository', name: 'team/a', actions: ['pull'] }), false);
});

test('a token that lives longer than the TTL allows is refused, whatever its signature (a stolen key mints those)', () => {
  const key = makeKey();
  const now = Date.now();
  const verifier = new TokenAuthority(key, { ttlSeconds: 300, issuer: 'registry-gate', now: () => now });
  const mint = (secondsAhead: number) => new TokenAuthority(key, { ttlSeconds: 300, issuer: 'registry-gate', now: () => now + secondsAhead * 1000 }).issue({ subject: 'alice', service: 'svc', access: [] }).token;
  // Issued 10^8 s ahead: signed with the real key, exp 10^8 s away, nbf not in the future enough to matter by itself.
  const forged = mint(1e8);
  assert.deepEqual(verifier.verify(forged, 'svc'), { ok: false, reason: 'not-yet-valid' });
  const backdated = new TokenAuthority(key, { ttlSeconds: 1e8, issuer: 'registry-gate', now: () => now }).issue({ subject: 'alice', service: 'svc', access: [] }).token;
  assert.deepEqual(verifier.verify(backdated, 'svc'), { ok: false, reason: 'lifetime' });
  assert.equal(verifier.verify(mint(20), 'svc').ok, true, 'a replica whose clock runs 20 s ahead still issues usable tokens');
  assert.equal(verifier.verify(mint(0), 'svc').ok, true);
});
