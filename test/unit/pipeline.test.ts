/**
 * Authorization proven as tables, without docker or a registry: the real pipeline and gate on a
 * loopback listener, a fake forwarder that records what would reach the registry, and a fake
 * registry for the questions the proxy asks itself (catalog pages, the digest of a tag).
 * who × method × path → status, error code, challenge, and whether (and what) was forwarded.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { createPipeline } from '../../src/pipeline.js';
import { AuthGate } from '../../src/auth/gate.js';
import { Identifier } from '../../src/auth/identify.js';
import { tableSource } from '../harness/identity.js';
import { TokensSource } from '../../src/auth/sources/tokens.js';
import { FileTokenStore } from '../../src/auth/access-tokens/store.js';
import { TokenManager } from '../../src/auth/access-tokens/manage.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TokenAuthority } from '../../src/auth/token.js';
import { keyIdOf } from '../../src/state/signing-key.js';
import { AccessPolicy } from '../../src/access/policy.js';
import { AccessRules, rulesForMode } from '../../src/access/rules.js';
import { ProtectedTags } from '../../src/access/protected-tags.js';
import { defaultConfig } from '../../src/config/defaults.js';
import { createLogger } from '../../src/observe/logger.js';
import type { AuditEntry } from '../../src/audit/audit-log.js';
import type { Forwarder } from '../../src/proxy/forward.js';
import type { RegistryQuestions, UpstreamAnswer } from '../../src/proxy/upstream-client.js';
import type { AccessRuleConfig, AuthMode, Config, ProtectedTagConfig } from '../../src/config/types.js';

const PASSWORDS: Record<string, string> = { alice: 'alice-pw', root: 'root-pw', bob: 'bob-pw' };
const GROUPS: Record<string, string[]> = { alice: ['team-a'], root: ['admins'] };
const D = (c: string) => `sha256:${c.repeat(64)}`;
const digestOf = (body: string) => `sha256:${createHash('sha256').update(body).digest('hex')}`;
const V1_BODY = '{"schemaVersion":2,"v":1}';

const SPEC_RULES: AccessRuleConfig[] = [
  { who: ['group:admins'], repositories: ['**'], actions: ['*'] },
  { who: ['authenticated'], repositories: ['${user}/**'], actions: ['pull', 'push', 'delete'] },
  { who: ['group:team-a'], repositories: ['team-a/**'], actions: ['pull', 'push', 'delete'] },
  { who: ['*'], repositories: ['public/**'], actions: ['pull'] },
];
const PROTECTED: ProtectedTagConfig[] = [{ repositories: ['**'], tags: ['v*'], who: ['group:admins'] }];

interface Forwarded {
  method: string;
  url: string;
  body: string;
  authorization: string | undefined;
}

/** What the fake registry holds: repositories for the catalog, tag → digest per repository. */
const CATALOG = ['alice/tool', 'bob/tool', 'public/base', 'team-a/app', 'team-a/lib', 'team-b/app', 'team-b/lib', 'zeta/x'];
/** `v2` of team-a/app is an index of two platforms; the first platform's manifest is known too. */
const PLATFORM_BODY = JSON.stringify({ schemaVersion: 2, config: { digest: D('3') }, layers: [{ digest: D('4') }, { digest: D('5') }] });
const INDEX_BODY = JSON.stringify({ schemaVersion: 2, manifests: [{ digest: D('1') }, { digest: D('2') }] });
const MANIFESTS: Record<string, string> = { [`team-a/app@${digestOf(INDEX_BODY)}`]: INDEX_BODY, [`team-a/app@${D('1')}`]: PLATFORM_BODY, [`team-a/app@${D('2')}`]: PLATFORM_BODY.replace(D('5'), D('6')) };
const TAGS: Record<string, Record<string, string>> = { 'team-a/app': { v1: digestOf(V1_BODY), v2: digestOf(INDEX_BODY), latest: D('c') } };

const registry: RegistryQuestions = {
  async ask(method, path): Promise<UpstreamAnswer> {
    const url = new URL(path, 'http://registry');
    const reply = (status: number, body = '', headers: Record<string, string> = {}): UpstreamAnswer => ({ status, headers: new Headers(headers), body });
    if (url.pathname === '/v2/_catalog') {
      const n = Number(url.searchParams.get('n'));
      const last = url.searchParams.get('last');
      const rest = CATALOG.filter((r) => last === null || r > last);
      return reply(200, JSON.stringify({ repositories: rest.slice(0, n) }), rest.length > n ? { link: '<next>; rel="next"' } : {});
    }
    const manifest = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(url.pathname);
    if (manifest) {
      const digest = TAGS[manifest[1]!]?.[manifest[2]!] ?? (`${manifest[1]}@${manifest[2]}` in MANIFESTS ? manifest[2] : undefined);
      if (!digest) return reply(404);
      return reply(200, method === 'HEAD' ? '' : (MANIFESTS[`${manifest[1]}@${digest}`] ?? '{}'), { 'docker-content-digest': digest });
    }
    const tags = /^\/v2\/(.+)\/tags\/list$/.exec(url.pathname);
    if (tags) {
      const known = TAGS[tags[1]!];
      return known ? reply(200, JSON.stringify({ name: tags[1], tags: Object.keys(known) })) : reply(404);
    }
    return reply(404);
  },
};

interface Stack {
  url: URL;
  forwarded: Forwarded[];
  audit: AuditEntry[];
  authority: TokenAuthority;
  close(): Promise<void>;
}

async function startPipeline(
  mode: AuthMode,
  access: AccessRuleConfig[] | null,
  protectedTags: ProtectedTagConfig[] = [],
  health: { unready?: string[]; degraded?: string[] } = {},
  overrides: Partial<Config> = {},
  /** A state directory: access tokens on, stored there, with `admins` as their admin group. */
  tokensDir: string | null = null,
): Promise<Stack> {
  const base = defaultConfig();
  const config: Config = { ...base, auth: { ...base.auth, mode, challenge: 'token' }, access, protectedTags, ...overrides };
  const secret = randomBytes(32);
  const authority = new TokenAuthority({ id: keyIdOf(secret), secret }, { ttlSeconds: 300, issuer: 'registry-gate' });
  const people = tableSource(PASSWORDS, { groups: GROUPS }).source;
  const tokensSource = tokensDir
    ? new TokensSource({ type: 'tokens', adminGroup: 'admins' }, await FileTokenStore.open(tokensDir, { logger: null, follow: false }), (o) => people.lookup(o), (o) => people.currentStamp(o) === null)
    : null;
  const identifier = new Identifier(tokensSource ? [people, tokensSource] : [people], config.loginLimits);
  const groups = { groupsOf: (user: string | null) => new Set(user ? (GROUPS[user] ?? []) : []) };
  const policy = new AccessPolicy(new AccessRules(access ?? rulesForMode(mode)), groups, config.auth.publicCatalog);
  const forwarded: Forwarded[] = [];
  const audit: AuditEntry[] = [];
  const forwarder: Forwarder = {
    forward(req: IncomingMessage, res: ServerResponse, outcome, options) {
      const chunks: Buffer[] = [];
      const finish = (body: Buffer) => {
        forwarded.push({ method: req.method!, url: req.url!, body: body.toString(), authorization: req.headers.authorization });
        outcome.upstreamStatus = 201;
        const headers: Record<string, string> = { 'content-length': '0' };
        if (req.method === 'PUT') headers['docker-content-digest'] = outcome.contentDigest = digestOf(body.toString());
        res.writeHead(req.method === 'PUT' ? 201 : 200, headers);
        res.end();
      };
      if (options.body) return finish(options.body);
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => finish(Buffer.concat(chunks)));
    },
    close() {},
  };
  const handler = createPipeline({
    config,
    logger: createLogger('silent'),
    gate: new AuthGate(config.auth, identifier, authority, policy),
    policy,
    protectedTags: new ProtectedTags(protectedTags),
    audit: { record: (e) => audit.push(e), reopen() {}, close: async () => {} },
    identifier,
    authority,
    tokens: tokensSource ? new TokenManager(tokensSource) : null,
    forwarder,
    upstream: registry,
    cache: null,
    readiness: async () => health.unready ?? [],
    degraded: () => health.degraded ?? [],
  });
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  return { url, forwarded, audit, authority, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** http.request sends the path as given (fetch would normalise dot segments away). */
function send(stack: Stack, method: string, path: string, opts: { auth?: string; body?: string; contentType?: string; host?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.host !== undefined) headers.host = opts.host;
    if (opts.auth) headers.authorization = opts.auth;
    if (opts.contentType !== undefined) headers['content-type'] = opts.contentType;
    if (opts.body !== undefined) headers['content-length'] = String(Buffer.byteLength(opts.body));
    const req = http.request({ host: stack.url.hostname, port: stack.url.port, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/**
 * The registry's `r.FormValue(name)` for a urlencoded `form` body and a query (body first, a pair
 * with `;` or a broken escape skipped), written apart from src/registry/inputs.ts as the oracle.
 */
function goFormValue(form: string, query: string, name: string): string {
  const values = [form, query].flatMap((text) =>
    text.split('&').flatMap((pair) => {
      const at = pair.indexOf('=');
      const [key, value] = at < 0 ? [pair, ''] : [pair.slice(0, at), pair.slice(at + 1)];
      if (pair === '' || pair.includes(';') || /%(?![0-9a-fA-F]{2})/.test(pair)) return [];
      const unescape = (t: string) => Buffer.from(t.replace(/\+/g, ' ').replace(/%([0-9a-fA-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))), 'latin1').toString();
      return unescape(key) === name ? [unescape(value)] : [];
    }),
  );
  return values[0] ?? '';
}

const basic = (user: string, password = PASSWORDS[user]!) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const codeOf = (a: Answer) => (a.body ? (JSON.parse(a.body) as { errors?: { code: string }[] }).errors?.[0]?.code : undefined);
const messageOf = (a: Answer) => (JSON.parse(a.body) as { errors: { message: string }[] }).errors[0]!.message;

describe('authorization with the access rules of SPEC.md (private mode, token challenge)', () => {
  let stack: Stack;
  let bearer: (user: string | null, access: { name: string; actions: string[] }[]) => string;
  before(async () => {
    stack = await startPipeline('private', SPEC_RULES, PROTECTED);
    bearer = (user, access) => {
      const stamp = user === null ? {} : { stamp: `stamp-of-${PASSWORDS[user]}` };
      const issued = stack.authority.issue({ subject: user, service: stack.url.host, access: access.map((a) => ({ type: 'repository', ...a })), ...stamp });
      return `Bearer ${issued.token}`;
    };
  });
  after(() => stack.close());

  test('who × method × path → status, code, challenge, forwarded', async () => {
    const M = '/manifests/t1';
    const rows: [string, string | undefined, string, string, number, string | undefined, RegExp | undefined][] = [
      // caller        authorization                   method   path                          status code        challenge
      ['anonymous', undefined, 'GET', '/v2/', 401, 'UNAUTHORIZED', /^Bearer realm="http:\/\/127\.0\.0\.1:\d+\/token",service="127\.0\.0\.1:\d+"$/],
      ['Basic Og==', 'Basic Og==', 'GET', '/v2/', 401, 'UNAUTHORIZED', /^Bearer /],
      ['alice', basic('alice'), 'GET', '/v2/', 200, undefined, undefined],
      ['anonymous', undefined, 'GET', `/v2/public/base${M}`, 200, undefined, undefined],
      ['anonymous', undefined, 'GET', `/v2/team-a/app${M}`, 401, 'UNAUTHORIZED', /scope="repository:team-a\/app:pull"$/],
      ['anonymous', undefined, 'PUT', `/v2/public/base${M}`, 401, 'UNAUTHORIZED', /scope="repository:public\/base:pull,push"$/],
      ['anonymous token', bearer(null, [{ name: 'public/base', actions: ['pull'] }]), 'PUT', `/v2/public/base${M}`, 403, 'DENIED', undefined],
      ['anonymous token', bearer(null, []), 'GET', `/v2/team-a/app${M}`, 403, 'DENIED', undefined],
      ['alice', basic('alice'), 'PUT', `/v2/team-a/app${M}`, 201, undefined, undefined],
      ['alice', basic('alice'), 'PUT', `/v2/alice/tool${M}`, 201, undefined, undefined],
      ['alice', basic('alice'), 'PUT', `/v2/team-b/app${M}`, 403, 'DENIED', undefined],
      ['alice', basic('alice'), 'GET', `/v2/team-b/app${M}`, 403, 'DENIED', undefined],
      ['alice', basic('alice'), 'DELETE', `/v2/public/base/manifests/${D('a')}`, 403, 'DENIED', undefined],
      ['alice', basic('alice', 'wrong'), 'GET', `/v2/team-a/app${M}`, 401, 'UNAUTHORIZED', /^Bearer /],
      ['alice token', bearer('alice', [{ name: 'team-a/app', actions: ['pull'] }]), 'PUT', `/v2/team-a/app${M}`, 401, 'UNAUTHORIZED', /error="insufficient_scope"/],
      ['alice token', bearer('alice', [{ name: 'team-a/app', actions: ['pull', 'push'] }]), 'PUT', `/v2/team-a/app${M}`, 201, undefined, undefined],
      ['alice token', bearer('alice', [{ name: 'team-b/app', actions: ['pull', 'push'] }]), 'PUT', `/v2/team-b/app${M}`, 403, 'DENIED', undefined],
      ['bob', basic('bob'), 'GET', '/v2/_catalog', 200, undefined, undefined],
      ['anonymous', undefined, 'GET', '/v2/_catalog', 401, 'UNAUTHORIZED', /scope="registry:catalog:\*"$/],
      ['root', basic('root'), 'DELETE', `/v2/team-b/app/manifests/${D('a')}`, 200, undefined, undefined],
    ];
    for (const [who, auth, method, path, status, code, challenge] of rows) {
      const before = stack.forwarded.length;
      const answer = await send(stack, method, path, { auth, body: method === 'PUT' ? '{}' : undefined });
      const label = `${who} ${method} ${path}`;
      assert.equal(answer.status, status, `${label}: ${answer.body}`);
      assert.equal(codeOf(answer), code, label);
      if (challenge) assert.match(String(answer.headers['www-authenticate']), challenge, label);
      else assert.equal(answer.headers['www-authenticate'], undefined, label);
      const reached = stack.forwarded.length > before;
      assert.equal(reached, status < 300 && path !== '/v2/_catalog', `${label}: forwarded?`);
      if (reached) {
        assert.equal(stack.forwarded.at(-1)!.url, path, label);
        assert.equal(stack.forwarded.at(-1)!.authorization, undefined, `${label}: Authorization reached the registry`);
      }
    }
  });

  test("a removed user's or a changed password's tokens stop working at the next request", async () => {
    const access = [{ name: 'team-a/app', actions: ['pull'] }];
    const path = '/v2/team-a/app/manifests/t';
    assert.equal((await send(stack, 'GET', path, { auth: bearer('alice', access) })).status, 200);
    const issue = (subject: string, stamp?: string) =>
      `Bearer ${stack.authority.issue({ subject, service: stack.url.host, access: access.map((a) => ({ type: 'repository', ...a })), ...(stamp ? { stamp } : {}) }).token}`;
    const cases: [string, RegExp][] = [
      [issue('alice', 'stamp-of-an-old-password'), /^token no longer valid: the password of "alice" changed; log in again$/],
      [issue('alice'), /the password of "alice" changed/],
      [issue('ghost', 'stamp-of-ghost'), /^token no longer valid: user "ghost" no longer exists; log in again$/],
    ];
    for (const [auth, message] of cases) {
      const answer = await send(stack, 'GET', path, { auth });
      assert.equal(answer.status, 401);
      assert.match(String(answer.headers['www-authenticate']), /error="invalid_token"/);
      assert.match(messageOf(answer), message);
    }
  });

  test('a GET or HEAD with a body is refused and the connection closed; nothing is forwarded', async () => {
    const before = stack.forwarded.length;
    const answer = await send(stack, 'GET', '/v2/public/base/manifests/t', { body: 'smuggled' });
    assert.equal(answer.status, 400);
    assert.equal(codeOf(answer), 'BAD_REQUEST');
    assert.equal(answer.headers.connection, 'close');
    assert.equal(stack.forwarded.length, before);
  });

  test('denials name the caller and what was refused', async () => {
    assert.equal(messageOf(await send(stack, 'PUT', '/v2/team-b/app/manifests/t', { auth: basic('alice'), body: '{}' })), 'user "alice" may not push to team-b/app');
    const anonymous = await send(stack, 'PUT', '/v2/public/x/manifests/t', { auth: bearer(null, []), body: '{}' });
    assert.match(messageOf(anonymous), /^authentication required to push to public\/x/);
  });

  test('path tricks never reach another repository: refused for users, forwarded untouched for "*" on "**"', async () => {
    const tricks = [
      '/v2/team-b/./app/manifests/t',
      '/v2/team-a/../team-b/app/manifests/t',
      '/v2/x/../team-a/app/manifests/t',
      '/v2/team-a/%2e%2e/team-b/app/manifests/t',
      '/v2/team-a/%2E/app/manifests/t',
      '/v2/team-a%2fapp/manifests/t',
      '/v2/team-b\\app/manifests/t',
      '/v2/team-a/app\\..\\..\\team-b\\app/manifests/t',
      '/v2/team-b//app/manifests/t',
      '//v2/team-b/app/manifests/t',
      '/v2/TEAM-A/app/manifests/t',
      '/v2/team-a/app/manifests/t#/../../../team-b/app/manifests/t',
      '/v2/team-a/app/manifests/t%23/../x',
      '/v2/./_catalog',
    ];
    for (const path of tricks) {
      for (const auth of [basic('alice'), bearer('alice', [{ name: 'team-a/app', actions: ['pull', 'push'] }])]) {
        const before = stack.forwarded.length;
        const answer = await send(stack, 'PUT', path, { auth, body: '{}' });
        // 404: not under /v2/ at all (`//v2/…`); never forwarded either way.
        assert.ok([403, 404].includes(answer.status), `${path}: ${answer.status} ${answer.body}`);
        assert.equal(stack.forwarded.length, before, `${path} was forwarded`);
      }
      const anonymous = await send(stack, 'GET', path);
      assert.ok([401, 404].includes(anonymous.status), `${path} anonymous: ${anonymous.status}`);
    }
    for (const path of tricks.filter((p) => p.startsWith('/v2/'))) {
      const answer = await send(stack, 'PUT', path, { auth: basic('root'), body: '{}' });
      assert.equal(answer.status, 201, path);
      assert.equal(stack.forwarded.at(-1)!.url, path, 'forwarded byte for byte');
    }
  });

  test('a cross-repository mount needs pull on the source', async () => {
    const mount = (from: string) => `/v2/team-a/app/blobs/uploads/?mount=${D('e')}&from=${from}`;
    assert.equal((await send(stack, 'POST', mount('team-b/app'), { auth: basic('alice') })).status, 403);
    assert.match(messageOf(await send(stack, 'POST', mount('team-b/app'), { auth: basic('alice') })), /pull from team-b\/app/);
    assert.equal((await send(stack, 'POST', mount('public/base'), { auth: basic('alice') })).status, 200);
    const token = bearer('alice', [{ name: 'team-a/app', actions: ['pull', 'push'] }]);
    const narrow = await send(stack, 'POST', mount('alice/tool'), { auth: token });
    assert.equal(narrow.status, 401, 'the rules allow pull on alice/tool, the token lacks it');
    assert.match(String(narrow.headers['www-authenticate']), /scope="repository:team-a\/app:pull,push repository:alice\/tool:pull",error="insufficient_scope"/);
  });

  test('a challenge names every scope the request needs: one token for exactly those, one retry, and the mount goes through', async () => {
    const mount = `/v2/alice/tool/blobs/uploads/?mount=${D('e')}&from=public/base`;
    const first = await send(stack, 'POST', mount);
    assert.equal(first.status, 401);
    const challenge = /scope="([^"]+)"/.exec(String(first.headers['www-authenticate']))?.[1];
    assert.equal(challenge, 'repository:alice/tool:pull,push repository:public/base:pull', 'anonymous may pull public/base, yet the retry needs it in its token');
    const query = new URLSearchParams({ service: stack.url.host, scope: challenge! }).toString().replace(/%20/g, '+');
    const { token } = JSON.parse((await send(stack, 'GET', `/token?${query}`, { auth: basic('alice') })).body) as { token: string };
    const retried = await send(stack, 'POST', mount, { auth: `Bearer ${token}` });
    assert.equal(retried.status, 200, retried.body);
    assert.equal(stack.forwarded.at(-1)!.url, mount);
  });

  test('a mount sent as a form body is authorized as the registry reads it: body first, every source asked', async () => {
    const FORM = 'application/x-www-form-urlencoded';
    const start = '/v2/bob/stolen/blobs/uploads/';
    stack.audit.length = 0;
    const before = stack.forwarded.length;
    const bodyOnly = await send(stack, 'POST', start, { auth: basic('bob'), contentType: FORM, body: `mount=${D('e')}&from=team-a/app` });
    assert.equal(bodyOnly.status, 403, bodyOnly.body);
    assert.match(messageOf(bodyOnly), /user "bob" may not pull from team-a\/app/);
    const conflict = await send(stack, 'POST', `${start}?mount=${D('e')}&from=bob/stolen`, { auth: basic('bob'), contentType: `${FORM.toUpperCase()}; charset=utf-8`, body: `from=team-a/app` });
    assert.equal(conflict.status, 403, conflict.body);
    assert.equal(stack.forwarded.length, before, 'nothing reached the registry');
    assert.deepEqual(
      stack.audit.map((e) => [e.action, e.user, e.repository, e.digest, e.from, e.status]),
      [
        ['mount', 'bob', 'bob/stolen', D('e'), 'team-a/app', 403],
        ['mount', 'bob', 'bob/stolen', D('e'), 'team-a/app', 403],
      ],
      'the audit lines name what the registry would have acted on',
    );

    const allowed = await send(stack, 'POST', start, { auth: basic('bob'), contentType: FORM, body: `mount=${D('e')}&from=public/base` });
    assert.equal(allowed.status, 200, allowed.body);
    assert.deepEqual(stack.forwarded.at(-1), { method: 'POST', url: start, body: `mount=${D('e')}&from=public/base`, authorization: undefined }, 'forwarded as read');
    const twoAllowed = await send(stack, 'POST', `${start}?mount=${D('e')}&from=bob/tool`, { auth: basic('bob'), contentType: FORM, body: 'from=public/base' });
    assert.equal(twoAllowed.status, 400, 'differing values are refused even when each is allowed');
    assert.match(messageOf(twoAllowed), /"from" is given more than once with different values/);
    const multipart = await send(stack, 'POST', start, { auth: basic('bob'), contentType: 'multipart/form-data; boundary=x', body: '--x\r\nContent-Disposition: form-data; name="from"\r\n\r\nteam-a/app\r\n--x--\r\n' });
    assert.equal(multipart.status, 400);
    const turkish = await send(stack, 'POST', start, { auth: basic('bob'), contentType: 'appl\u00c4\u00b0cation/x-www-form-urlencoded', body: `mount=${D('e')}&from=team-a/app` });
    assert.equal(turkish.status, 400, 'Go lower-cases a UTF-8 "İ" to "i": the registry would read this as a form');
    const tooLarge = await send(stack, 'POST', start, { auth: basic('bob'), contentType: FORM, body: 'x'.repeat(20_000) });
    assert.equal(tooLarge.status, 413);
    assert.equal(stack.forwarded.length, before + 1);
  });

  test('a query the registry reads otherwise than URLSearchParams does is read as the registry reads it', async () => {
    // Go skips a pair with a broken escape or a ";", so the registry mounts from the second `from`.
    for (const query of [`mount=${D('e')}&from=%zz&from=team-a/app`, `mount=${D('e')}&from;x=1&from=team-a/app`, `mount=${D('e')}&fr%6Fm=team-a/app`]) {
      const answer = await send(stack, 'POST', `/v2/bob/stolen/blobs/uploads/?${query}`, { auth: basic('bob') });
      assert.equal(answer.status, 403, `${query}: ${answer.body}`);
    }
  });

  test('property: parameters in query and form body, duplicated or conflicting, never take a mount to a repository bob may not pull', async () => {
    const pair = fc.constantFrom(
      `mount=${D('e')}`, 'mount=', 'from=team-a/app', 'from=bob/stolen', 'from=public/base', 'from=', 'from=%zz', 'from;=team-a/app', 'from=team-a/app;',
      'fr%6Fm=team-a/app', 'from=team-a%2Fapp', 'from=team-a/app%', '+from=team-a/app', 'from=TEAM-A/app', 'from=localhost:5000/team-a/app', `digest=${D('f')}`, '',
    );
    const fields = fc.array(pair, { maxLength: 4 }).map((p) => p.join('&'));
    const contentType = fc.constantFrom(undefined, 'application/x-www-form-urlencoded', 'Application/X-WWW-Form-Urlencoded; charset=utf-8', ' application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/octet-stream', 'text/plain');
    const start = '/v2/bob/stolen/blobs/uploads/';
    await fc.assert(
      fc.asyncProperty(fields, fc.option(fields, { nil: undefined }), contentType, async (query, body, type) => {
        const before = stack.forwarded.length;
        const path = query ? `${start}?${query}` : start;
        const answer = await send(stack, 'POST', path, { auth: basic('bob'), body, contentType: type });
        if (stack.forwarded.length === before) return;
        assert.equal(answer.status, 200);
        assert.ok(!type?.startsWith('multipart'), 'a multipart body reached the registry');
        const form = type?.trim().toLowerCase().startsWith('application/x-www-form-urlencoded') ? (body ?? '') : '';
        const from = goFormValue(form, query, 'from');
        const mount = goFormValue(form, query, 'mount');
        if (from !== '' && mount !== '') assert.match(from, /^(bob|public)\//, `the registry mounts from ${from}`);
        assert.deepEqual([stack.forwarded.at(-1)!.url, stack.forwarded.at(-1)!.body], [path, body ?? ''], 'forwarded as authorized');
      }),
      { numRuns: 300 },
    );
  });

  test('a malformed reference gets the registry\'s answer from the gate for those who may pull, and is never forwarded', async () => {
    const before = stack.forwarded.length;
    const path = '/v2/team-a/app/manifests/.INVALID_MANIFEST_NAME';
    const alice = await send(stack, 'GET', path, { auth: basic('alice') });
    assert.equal(alice.status, 404);
    assert.equal(codeOf(alice), 'MANIFEST_UNKNOWN');
    assert.equal((await send(stack, 'HEAD', path, { auth: basic('alice') })).status, 404);
    assert.equal((await send(stack, 'GET', path, { auth: basic('bob') })).status, 403, 'bob may not read team-a/app');
    assert.equal((await send(stack, 'PUT', path, { auth: basic('alice'), body: '{}' })).status, 403, 'writes stay refused');
    const digest = await send(stack, 'GET', '/v2/team-a/app/blobs/sha256:abc', { auth: basic('alice') });
    assert.deepEqual([digest.status, codeOf(digest)], [400, 'DIGEST_INVALID']);
    assert.equal(stack.forwarded.length, before);
  });

  test('tags/list with n and last is paged by the gate (registry 2.8 ignores both); without them the registry answers', async () => {
    const before = stack.forwarded.length;
    const page = async (query: string) => {
      const answer = await send(stack, 'GET', `/v2/team-a/app/tags/list${query}`, { auth: basic('alice') });
      return { status: answer.status, body: answer.body ? JSON.parse(answer.body) : null, link: answer.headers.link };
    };
    assert.deepEqual(await page('?n=2'), { status: 200, body: { name: 'team-a/app', tags: ['latest', 'v1'] }, link: '</v2/team-a/app/tags/list?last=v1&n=2>; rel="next"' });
    assert.deepEqual(await page('?last=v1&n=2'), { status: 200, body: { name: 'team-a/app', tags: ['v2'] }, link: undefined });
    assert.deepEqual(await page('?last=latest'), { status: 200, body: { name: 'team-a/app', tags: ['v1', 'v2'] }, link: undefined });
    assert.equal((await page('?n=x')).status, 400);
    assert.equal(stack.forwarded.length, before, 'answered by the gate');
    const unknown = await send(stack, 'GET', '/v2/alice/none/tags/list?n=1', { auth: basic('alice') });
    assert.equal(unknown.status, 404, 'the registry\'s own refusal passes');
    assert.equal((await send(stack, 'GET', '/v2/team-b/app/tags/list?n=1', { auth: basic('alice') })).status, 403, 'paging asks the rules first');
    await send(stack, 'GET', '/v2/team-a/app/tags/list', { auth: basic('alice') });
    assert.equal(stack.forwarded.at(-1)!.url, '/v2/team-a/app/tags/list');
  });

  test("the catalog lists only what the caller may pull, in pages with a Link that continues", async () => {
    const page = async (auth: string, query: string) => {
      const answer = await send(stack, 'GET', `/v2/_catalog${query}`, { auth });
      assert.equal(answer.status, 200, answer.body);
      return { repositories: (JSON.parse(answer.body) as { repositories: string[] }).repositories, link: answer.headers.link };
    };
    const first = await page(basic('alice'), '?n=2');
    assert.deepEqual(first.repositories, ['alice/tool', 'public/base']);
    assert.equal(first.link, '</v2/_catalog?last=public%2Fbase&n=2>; rel="next"');
    const second = await page(basic('alice'), '?last=public%2Fbase&n=2');
    assert.deepEqual(second.repositories, ['team-a/app', 'team-a/lib']);
    assert.equal(second.link, undefined);
    assert.deepEqual((await page(basic('bob'), '')).repositories, ['bob/tool', 'public/base']);
    assert.equal((await send(stack, 'GET', '/v2/_catalog?n=x', { auth: basic('bob') })).status, 400);
    const before = stack.forwarded.length;
    await send(stack, 'GET', '/v2/_catalog?n=5', { auth: basic('root') });
    assert.equal(stack.forwarded.at(-1)?.url, '/v2/_catalog?n=5', 'an admin gets the registry\'s own answer');
    assert.equal(stack.forwarded.length, before + 1);
  });

  test('protected tags: no move to another digest, no delete; the same digest and new tags pass; admins are exempt', async () => {
    const put = (user: string, tag: string, body: string) => send(stack, 'PUT', `/v2/team-a/app/manifests/${tag}`, { auth: basic(user), body });
    const moved = await put('alice', 'v1', '{"schemaVersion":2,"v":2}');
    assert.equal(moved.status, 403);
    assert.equal(codeOf(moved), 'DENIED');
    assert.match(messageOf(moved), /tag "v1" of team-a\/app is protected .* points to sha256:[0-9a-f]{64} and may not be moved/);

    const before = stack.forwarded.length;
    assert.equal((await put('alice', 'v1', V1_BODY)).status, 201, 're-push of the same digest');
    assert.equal(stack.forwarded.at(-1)!.body, V1_BODY, 'the body read for the check is forwarded as it came');
    assert.equal((await put('alice', 'v9', '{"new":true}')).status, 201, 'a new protected tag');
    assert.equal((await put('alice', 'latest', '{"moved":true}')).status, 201, 'unprotected tags move');
    assert.equal((await put('root', 'v1', '{"by":"admin"}')).status, 201, 'exempt');
    assert.equal(stack.forwarded.length, before + 4);

    const deleteV1 = await send(stack, 'DELETE', `/v2/team-a/app/manifests/${digestOf(V1_BODY)}`, { auth: basic('alice') });
    assert.equal(deleteV1.status, 403);
    assert.match(messageOf(deleteV1), /protected tag "v1"/);
    assert.equal((await send(stack, 'DELETE', `/v2/team-a/app/manifests/${D('c')}`, { auth: basic('alice') })).status, 200);
    assert.equal((await send(stack, 'DELETE', '/v2/team-a/app/manifests/v1', { auth: basic('alice') })).status, 403);
  });

  test("protected tags protect what they point to: an index's platform manifests and their blobs", async () => {
    const del = (user: string, what: string) => send(stack, 'DELETE', `/v2/team-a/app/${what}`, { auth: basic(user) });
    const refusals: [string, RegExp][] = [
      [`manifests/${digestOf(INDEX_BODY)}`, /is the manifest of the protected tag "v2" of team-a\/app/],
      [`manifests/${D('1')}`, /is a platform manifest of the protected tag "v2"/],
      [`manifests/${D('2')}`, /is a platform manifest of the protected tag "v2"/],
      [`blobs/${D('3')}`, /is a blob of the protected tag "v2"/],
      [`blobs/${D('6')}`, /is a blob of the protected tag "v2"/],
    ];
    const before = stack.forwarded.length;
    for (const [what, message] of refusals) {
      const answer = await del('alice', what);
      assert.equal(answer.status, 403, `${what}: ${answer.body}`);
      assert.match(messageOf(answer), message, what);
    }
    assert.equal(stack.forwarded.length, before, 'nothing was deleted');
    assert.equal((await del('alice', `blobs/${D('9')}`)).status, 200, 'a blob no protected tag needs');
    assert.equal((await del('alice', `manifests/${D('9')}`)).status, 200, 'a manifest no protected tag needs');
    for (const [what] of refusals) assert.equal((await del('root', what)).status, 200, `exempt: ${what}`);
  });

  test('the audit trail: changes with user, client, repository, tag, digest, status, bytes; failed logins; no challenges', async () => {
    stack.audit.length = 0;
    const body = '{"schemaVersion":2,"audit":true}';
    await send(stack, 'PUT', '/v2/team-a/app/manifests/audited', { auth: basic('alice'), body });
    await send(stack, 'PUT', '/v2/team-b/app/manifests/refused', { auth: basic('alice'), body });
    await send(stack, 'PUT', '/v2/team-a/app/manifests/x');
    await send(stack, 'GET', '/v2/team-a/app/manifests/x', { auth: basic('alice', 'guess') });
    await send(stack, 'PUT', `/v2/team-a/app/blobs/uploads/abc?digest=${D('f')}`, { auth: basic('alice'), body: 'layer' });
    await send(stack, 'GET', '/v2/team-a/app/manifests/audited', { auth: basic('alice') });
    const [pushed, refused, failed, uploaded, ...rest] = stack.audit;
    assert.deepEqual(rest, [], JSON.stringify(rest));
    assert.deepEqual(
      { ...pushed, request: undefined },
      { event: 'change', action: 'push', user: 'alice', client: '127.0.0.1', repository: 'team-a/app', tag: 'audited', digest: digestOf(body), status: 201, bytes: pushed!.bytes, request: undefined },
    );
    assert.ok(pushed!.bytes! >= Buffer.byteLength(body), `bytes ${pushed!.bytes}`);
    assert.equal(refused!.status, 403);
    assert.equal(refused!.tag, 'refused');
    assert.deepEqual([failed!.event, failed!.user, failed!.status, failed!.reason], ['login-failed', 'alice', 401, 'invalid username or password']);
    assert.deepEqual([uploaded!.action, uploaded!.digest], ['upload', digestOf('layer')]);
    assert.ok(!JSON.stringify(stack.audit).includes('guess'), 'a password reached the audit log');
  });
});

describe('every refused write and every failed login leaves one audit line', () => {
  let stack: Stack;
  before(async () => {
    stack = await startPipeline('private', SPEC_RULES, PROTECTED);
  });
  after(() => stack.close());

  test('writes the gate cannot classify, refused upload steps, and user names with control characters', async () => {
    stack.audit.length = 0;
    assert.equal((await send(stack, 'PUT', '/v2/alice/x/manifests/a%22b', { auth: basic('alice'), body: '{}' })).status, 403);
    assert.equal((await send(stack, 'PATCH', '/v2/team-b/app/blobs/uploads/u1', { auth: basic('alice'), body: 'layer' })).status, 403);
    assert.equal((await send(stack, 'POST', '/v2/team-b/app/blobs/uploads/', { auth: basic('alice') })).status, 403);
    const names = ['alice\nforged', '\u001b[31malice', 'alice\u2028x'];
    for (const user of names) assert.equal((await send(stack, 'GET', '/v2/alice/x/manifests/t', { auth: basic(user, 'alice-pw') })).status, 401, JSON.stringify(user));
    // A first challenge and an allowed upload step are not events.
    await send(stack, 'PUT', '/v2/alice/x/manifests/a%22b', { body: '{}' });
    await send(stack, 'PATCH', '/v2/alice/x/blobs/uploads/u1', { auth: basic('alice'), body: 'layer' });
    assert.deepEqual(
      stack.audit.map((e) => [e.event, e.action, e.user, e.method, e.path, e.repository, e.status]),
      [
        ['change', 'write', 'alice', 'PUT', '/v2/alice/x/manifests/a%22b', undefined, 403],
        ['change', 'upload', 'alice', 'PATCH', undefined, 'team-b/app', 403],
        ['change', 'upload', 'alice', 'POST', undefined, 'team-b/app', 403],
        ...names.map((user) => ['login-failed', 'login', user, undefined, undefined, undefined, 401]),
      ],
    );
  });
});

describe('without "access", each auth mode decides exactly as before rules existed', () => {
  const M = '/v2/team/app/manifests/latest';
  const rows: [AuthMode, string, string | undefined, string, string, number][] = [
    ['none', 'anonymous', undefined, 'PUT', M, 201],
    ['none', 'anonymous', undefined, 'GET', '/v2/a/../b/manifests/x', 200],
    ['private', 'anonymous', undefined, 'GET', M, 401],
    ['private', 'alice', basic('alice'), 'GET', M, 200],
    ['private', 'alice', basic('alice'), 'DELETE', M, 200],
    ['private', 'alice', basic('alice'), 'GET', '/v2/_catalog', 200],
    ['private', 'anonymous', undefined, 'GET', '/v2/_catalog', 401],
    ['private', 'alice', basic('alice'), 'PUT', '/v2/x/../team/app/manifests/t', 201],
    ['read-public', 'anonymous', undefined, 'GET', M, 200],
    ['read-public', 'anonymous', undefined, 'PUT', M, 401],
    ['read-public', 'anonymous', undefined, 'GET', '/v2/_catalog', 401],
    ['read-public', 'anonymous', undefined, 'GET', '/v2/a/../b/manifests/x', 401],
    ['read-public', 'alice', basic('alice'), 'PUT', M, 201],
    // An upload URL is part of a push, also for reading its status.
    ['read-public', 'anonymous', undefined, 'GET', '/v2/team/app/blobs/uploads/abc', 401],
    ['read-public', 'alice', basic('alice'), 'GET', '/v2/team/app/blobs/uploads/abc', 200],
  ];
  for (const mode of ['none', 'private', 'read-public'] as const) {
    test(mode, async () => {
      const stack = await startPipeline(mode, null);
      try {
        for (const [m, who, auth, method, path, status] of rows) {
          if (m !== mode) continue;
          const answer = await send(stack, method, path, { auth, body: method === 'PUT' ? '{}' : undefined });
          assert.equal(answer.status, status, `${who} ${method} ${path}: ${answer.body}`);
        }
      } finally {
        await stack.close();
      }
    });
  }
});

test('a Host the proxy has no name for is 421, and no realm or service ever names it; probes are answered for any host', async (t) => {
  const stack = await startPipeline('read-public', null);
  t.after(() => stack.close());
  const port = stack.url.port;
  for (const host of [`evil.example:${port}`, 'evil.example', `127.0.0.2:${port}`, `[::1]:${port}`, `localhost.evil:${port}`]) {
    for (const path of ['/v2/', '/token?service=x', '/v2/public/base/manifests/t']) {
      const answer = await send(stack, 'GET', path, { host });
      assert.equal(answer.status, 421, `${host} ${path}`);
      assert.equal(codeOf(answer), 'MISDIRECTED');
      assert.equal(answer.headers['www-authenticate'], undefined);
      assert.ok(!answer.body.includes('evil'), answer.body);
    }
    assert.equal((await send(stack, 'GET', '/healthz', { host })).status, 200);
  }
  // The default self-signed names: localhost and 127.0.0.1, any port, any case, a trailing dot.
  for (const host of [`localhost:${port}`, `LOCALHOST.:${port}`, '127.0.0.1']) {
    const answer = await send(stack, 'GET', '/v2/', { host });
    assert.equal(answer.status, 401, host);
    assert.match(String(answer.headers['www-authenticate']), new RegExp(`realm="http://${host.replace(/[.]/g, '\\.')}/token"`));
  }
});

test('/readyz: unready is 503 and wins over degraded; degraded is 200 with its reasons; else ready', async (t) => {
  const rows: Array<[{ unready?: string[]; degraded?: string[] }, number, unknown]> = [
    [{}, 200, { status: 'ready' }],
    [{ degraded: ['Redis unreachable for cache invalidations (x)'] }, 200, { status: 'degraded', reasons: ['Redis unreachable for cache invalidations (x)'] }],
    [{ unready: ['registry unreachable'], degraded: ['Redis unreachable for ACME coordination (x)'] }, 503, { status: 'unready', reasons: ['registry unreachable'] }],
  ];
  for (const [health, status, body] of rows) {
    const stack = await startPipeline('private', null, [], health);
    t.after(() => stack.close());
    const answer = await send(stack, 'GET', '/readyz');
    assert.equal(answer.status, status, JSON.stringify(health));
    assert.deepEqual(JSON.parse(answer.body), body);
  }
});

test('/readyz tells its reasons (internal addresses) only to callers on this host', async (t) => {
  const reasons = { unready: ['registry at 10.1.2.3:5000 unreachable (ECONNREFUSED)'], degraded: ['Redis unreachable for cache invalidations (redis://10.1.2.4:6379/0)'] };
  const stack = await startPipeline('private', null, [], reasons, { trustedProxies: ['127.0.0.1/32'] });
  t.after(() => stack.close());
  const from = (client: string) => send(stack, 'GET', '/readyz', { headers: { 'x-forwarded-for': client } });
  const remote = await from('203.0.113.5');
  assert.equal(remote.status, 503);
  assert.deepEqual(JSON.parse(remote.body), { status: 'unready' });
  const local = await from('127.0.0.1');
  assert.deepEqual(JSON.parse(local.body), { status: 'unready', reasons: reasons.unready });
  const degraded = await startPipeline('private', null, [], { degraded: reasons.degraded }, { trustedProxies: ['127.0.0.1/32'] });
  t.after(() => degraded.close());
  assert.deepEqual(JSON.parse((await send(degraded, 'GET', '/readyz', { headers: { 'x-forwarded-for': '2001:db8::1' } })).body), { status: 'degraded' });
});

test('/gate/v1/tokens: a person\'s own password manages their own tokens; a token or nobody cannot; audit lines name token and owner', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'rg-api-'));
  const stack = await startPipeline('private', SPEC_RULES, [], {}, {}, dir);
  t.after(async () => {
    await stack.close();
    await rm(dir, { recursive: true, force: true });
  });
  const json = (a: Answer) => JSON.parse(a.body);
  const create = (auth: string | undefined, body: object) => send(stack, 'POST', '/gate/v1/tokens', { ...(auth ? { auth } : {}), body: JSON.stringify(body), contentType: 'application/json' });
  const anonymous = await send(stack, 'GET', '/gate/v1/tokens');
  assert.equal(anonymous.status, 401);
  assert.match(String(anonymous.headers['www-authenticate']), /^Basic realm=/);
  assert.equal((await create(basic('alice', 'wrong'), { name: 'x', scopes: ['alice/**:pull'], expires: '1d' })).status, 401, 'a wrong password creates nothing');

  const made = await create(basic('alice'), { name: 'alice-ci', scopes: ['team-a/**:pull'], expires: '30d' });
  assert.equal(made.status, 201, made.body);
  const secret = json(made).secret as string;
  assert.match(secret, /^rgt_/);
  assert.equal(json(made).owner, 'alice');
  assert.equal(stack.audit.at(-1)?.event, 'token');
  assert.deepEqual([stack.audit.at(-1)?.action, stack.audit.at(-1)?.user, stack.audit.at(-1)?.accessToken, stack.audit.at(-1)?.owner], ['token-create', 'alice', 'alice-ci', 'alice']);

  const withToken = await create(basic('alice-ci', secret), { name: 'y', scopes: ['**:*'], expires: '1d' });
  assert.equal(withToken.status, 403, 'a leaked token cannot mint more');
  assert.match(messageOf(withToken), /access token cannot manage access tokens/);
  assert.equal((await send(stack, 'GET', '/gate/v1/tokens', { auth: basic('alice-ci', secret) })).status, 403);

  const bobs = await create(basic('bob'), { name: 'bob-ci', scopes: ['bob/**:pull'], expires: '7d' });
  assert.equal(bobs.status, 201);
  const forAlice = await create(basic('bob'), { name: 'sneaky', owner: 'alice', scopes: ['**:*'], expires: '7d' });
  assert.equal(forAlice.status, 403);
  const seenBy = async (user: string) => (json(await send(stack, 'GET', '/gate/v1/tokens', { auth: basic(user) })).tokens as { name: string }[]).map((v) => v.name);
  assert.deepEqual(await seenBy('alice'), ['alice-ci']);
  assert.deepEqual(await seenBy('bob'), ['bob-ci']);
  assert.deepEqual(await seenBy('root'), ['alice-ci', 'bob-ci'], 'admins see everyone\'s');
  const listed = await send(stack, 'GET', '/gate/v1/tokens', { auth: basic('root') });
  assert.ok(!listed.body.includes('rgt_') && !listed.body.includes('hash'), 'never a secret or hash in a list');

  const bobRevokes = await send(stack, 'DELETE', '/gate/v1/tokens/alice-ci', { auth: basic('bob') });
  assert.equal(bobRevokes.status, 404, 'another person\'s token is not found');
  assert.equal((await send(stack, 'GET', '/v2/team-a/app/manifests/v1', { auth: basic('alice-ci', secret) })).status, 200, 'still works');

  for (const [body, pattern] of [
    ['{', /must be JSON/],
    ['{"name":"z","scopes":["x:pull"]}', /expiry is required/],
    ['{"name":"z$","scopes":["x:pull"],"expires":"1d"}', /token name/],
    ['{"name":"z","scopes":["x:pull"],"expires":"1d","admin":true}', /unknown field "admin"/],
  ] as const) {
    const answer = await send(stack, 'POST', '/gate/v1/tokens', { auth: basic('alice'), body, contentType: 'application/json' });
    assert.equal(answer.status, 400, body);
    assert.match(messageOf(answer), pattern);
  }
  assert.equal((await send(stack, 'PUT', '/gate/v1/tokens', { auth: basic('alice'), body: '{}' })).status, 405);

  const revoked = await send(stack, 'DELETE', '/gate/v1/tokens/alice-ci', { auth: basic('alice') });
  assert.equal(revoked.status, 204);
  assert.deepEqual([stack.audit.at(-1)?.action, stack.audit.at(-1)?.accessToken, stack.audit.at(-1)?.owner], ['token-revoke', 'alice-ci', 'alice']);
  assert.equal((await send(stack, 'GET', '/v2/team-a/app/manifests/v1', { auth: basic('alice-ci', secret) })).status, 401, 'revoked: refused');
  const pushAudit = stack.audit.find((e) => e.event === 'login-failed' && e.user === 'alice-ci');
  assert.ok(pushAudit, 'the refused login is audited under the token name');
});

test('without a tokens source /gate/v1/tokens is not found', async (t) => {
  const stack = await startPipeline('private', SPEC_RULES);
  t.after(() => stack.close());
  assert.equal((await send(stack, 'GET', '/gate/v1/tokens', { auth: basic('alice') })).status, 404);
});
