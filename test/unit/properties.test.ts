/**
 * Property tests (fast-check) for the parsers a client can reach: whatever bytes arrive, they
 * answer and never throw, and what they accept means one thing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { parseAuthorization } from '../../src/auth/credentials.js';
import { formatScope, isRepositoryName, parseScope } from '../../src/registry/scope.js';
import { registryParams } from '../../src/registry/inputs.js';
import { classifyRequest } from '../../src/registry/route.js';
import { TokenAuthority } from '../../src/auth/token.js';
import { keyIdOf } from '../../src/state/signing-key.js';
import { formatHtpasswdLine, parseHtpasswd } from '../../src/auth/htpasswd.js';
import { parseClientHello } from '../../src/tls/client-hello.js';
import { compileGlob } from '../../src/access/glob.js';

const RUNS = { numRuns: 2000 };

test('Authorization: any header gives one of four shapes; Basic user:password round-trips', () => {
  fc.assert(
    fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.string().map((s) => `Basic ${s}`), fc.string().map((s) => `Bearer ${s}`)), (header) => {
      assert.ok(['none', 'basic', 'bearer', 'malformed'].includes(parseAuthorization(header).kind));
    }),
    RUNS,
  );
  const part = fc.string({ unit: fc.constantFrom(...'abcXYZ019-_.!@ é'.split('')), maxLength: 20 });
  fc.assert(
    fc.property(part, part, (user, password) => {
      fc.pre(!user.includes(':') && (user !== '' || password !== ''));
      const parsed = parseAuthorization(`Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`);
      assert.deepEqual(parsed, { kind: 'basic', user, password });
    }),
    RUNS,
  );
});

test('scopes: any text parses or is null, never throws; what parses formats back to the same access', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 600 }), (text) => {
      const access = parseScope(text);
      if (access) assert.deepEqual(parseScope(formatScope(access)), access);
    }),
    RUNS,
  );
  const component = fc.stringMatching(/^[a-z0-9]+(?:[._-][a-z0-9]+)*$/, { maxLength: 12 });
  fc.assert(
    fc.property(fc.array(component, { minLength: 1, maxLength: 4 }), fc.subarray(['pull', 'push', 'delete'], { minLength: 1 }), (parts, actions) => {
      const name = parts.join('/');
      fc.pre(isRepositoryName(name));
      assert.deepEqual(parseScope(`repository:${name}:${actions.join(',')}`), { type: 'repository', name, actions });
    }),
    RUNS,
  );
});

test('routes: a path the classifier accepts has no segment the registry would read otherwise', () => {
  const segment = fc.oneof(fc.constantFrom('.', '..', '', '%2e', '%2E%2e', '%2f', 'a\\b', 'A', 'manifests', 'blobs', 'uploads', 'tags', 'list', 'latest', '_catalog'), fc.stringMatching(/^[a-z0-9._%-]{1,8}$/));
  const method = fc.constantFrom('GET', 'HEAD', 'PUT', 'POST', 'PATCH', 'DELETE', 'OPTIONS');
  fc.assert(
    fc.property(method, fc.array(segment, { maxLength: 8 }), fc.string({ maxLength: 40 }), (m, segments, query) => {
      const path = `/v2/${segments.join('/')}`;
      const route = classifyRequest(m, path, registryParams(query));
      if (route.kind !== 'repository') return;
      assert.ok(isRepositoryName(route.name), route.name);
      const decoded = decodeURIComponent(path);
      assert.ok(!/(^|\/)\.{1,2}(\/|$)/.test(decoded), `dot segment accepted: ${path}`);
      assert.ok(!decoded.slice(4).includes('//') && !decoded.includes('\\'), `ambiguous path accepted: ${path}`);
      assert.ok(route.needs.every((n) => n.actions.length > 0));
    }),
    RUNS,
  );
  fc.assert(
    fc.property(fc.string({ maxLength: 300 }), method, (path, m) => {
      classifyRequest(m, path, registryParams(''));
    }),
    RUNS,
  );
});

test('tokens: any string is refused with a reason, never a throw; a changed character never verifies', () => {
  const secret = randomBytes(32);
  const authority = new TokenAuthority({ id: keyIdOf(secret), secret }, { ttlSeconds: 300, issuer: 'registry-gate' });
  fc.assert(
    fc.property(fc.string({ maxLength: 400 }), (text) => {
      assert.equal(authority.verify(text, 'svc').ok, false);
    }),
    RUNS,
  );
  const { token } = authority.issue({ subject: 'alice', service: 'svc', access: [{ type: 'repository', name: 'a', actions: ['pull'] }] });
  fc.assert(
    fc.property(fc.nat({ max: token.length - 1 }), fc.constantFrom(...'ABCabc012-_.'.split('')), (at, char) => {
      fc.pre(token[at] !== char);
      const changed = token.slice(0, at) + char + token.slice(at + 1);
      const verdict = authority.verify(changed, 'svc');
      // base64url's last character can carry unused bits: a change there may decode to the same bytes.
      if (verdict.ok) assert.equal(Buffer.from(changed.split('.')[2] ?? '', 'base64url').equals(Buffer.from(token.split('.')[2]!, 'base64url')), true);
    }),
    RUNS,
  );
});

test('htpasswd: any text parses without throwing; a formatted line reads back as written', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 500 }), (text) => {
      const parsed = parseHtpasswd(text);
      for (const [user] of parsed.users) assert.ok(!user.includes(':') && !user.includes('\n'));
    }),
    RUNS,
  );
  const hash = '$2y$05$' + 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0'.slice(0, 53);
  fc.assert(
    fc.property(fc.stringMatching(/^[A-Za-z0-9._@-]{1,32}$/), (user) => {
      assert.equal(parseHtpasswd(`${formatHtpasswdLine(user, hash)}\n`).users.get(user), hash);
    }),
    RUNS,
  );
});

test('ClientHello: any bytes give a verdict, never a throw', () => {
  const handshake = fc.uint8Array({ maxLength: 600 }).map((body) => Buffer.concat([Buffer.from([0x16, 0x03, 0x01, body.length >> 8, body.length & 0xff]), Buffer.from(body)]));
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 600 }).map((b) => Buffer.from(b)), handshake), (data) => {
      parseClientHello(data);
    }),
    RUNS,
  );
});

/** The meaning of a pattern, by plain recursion (fine for the short strings here). */
function reference(pattern: string, name: string, user: string | null): boolean {
  if (pattern.startsWith('${user}')) {
    if (user === null || user === '' || user.includes('/')) return false;
    return name.startsWith(user) && reference(pattern.slice(7), name.slice(user.length), user);
  }
  if (pattern.startsWith('**')) {
    for (let i = 0; i <= name.length; i++) if (reference(pattern.slice(2), name.slice(i), user)) return true;
    return false;
  }
  if (pattern.startsWith('*')) {
    for (let i = 0; i <= name.length && !name.slice(0, i).includes('/'); i++) if (reference(pattern.slice(1), name.slice(i), user)) return true;
    return false;
  }
  if (pattern === '') return name === '';
  return name[0] === pattern[0] && reference(pattern.slice(1), name.slice(1), user);
}

test('globs: the regular expression and the linear walk both mean what the reference means', () => {
  const piece = fc.constantFrom('a', 'b', '/', '-', '*', '**', '${user}');
  fc.assert(
    fc.property(fc.array(piece, { minLength: 1, maxLength: 7 }), fc.stringMatching(/^[ab/-]{0,10}$/), fc.constantFrom(null, 'a', 'ab', 'b-a'), (pieces, name, user) => {
      const pattern = pieces.join('');
      assert.equal(compileGlob(pattern).matches(name, { user }), reference(pattern, name, user), `${pattern} ~ ${name} (${user})`);
    }),
    RUNS,
  );
});
