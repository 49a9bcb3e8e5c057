import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyRequest, type Route } from '../../src/registry/route.js';
import { bodyForm, parseGoQuery, registryParams, type RegistryParams } from '../../src/registry/inputs.js';

const q = (fields: Record<string, string> = {}): RegistryParams => registryParams(new URLSearchParams(fields).toString());

const D = 'sha256:' + 'a'.repeat(64);
const ACTIONS: Record<string, string[]> = { pull: ['pull'], push: ['pull', 'push'], delete: ['delete'] };
const repo = (name: string, action: string) => [{ type: 'repository', name, actions: ACTIONS[action]! }];
const accessForRequest = (method: string, path: string, query = q()): Route => classifyRequest(method, path, query);
const needs = (method: string, path: string, query: RegistryParams) => {
  const route = classifyRequest(method, path, query);
  return route.kind === 'repository' ? route.needs : null;
};

function expectAccess(method: string, path: string, name: string, action: string, endpoint: string) {
  const route = accessForRequest(method, path);
  assert.ok(route.kind === 'repository', `${method} ${path}`);
  assert.deepEqual({ endpoint: route.endpoint, name: route.name, needs: route.needs }, { endpoint, name, needs: repo(name, action) }, `${method} ${path}`);
}

test('ping', () => {
  assert.deepEqual(accessForRequest('GET', '/v2/'), { kind: 'ping' });
  assert.deepEqual(accessForRequest('HEAD', '/v2/'), { kind: 'ping' });
  assert.deepEqual(accessForRequest('GET', '/v2'), { kind: 'ping' });
  assert.deepEqual(accessForRequest('POST', '/v2/'), { kind: 'unknown' });
});

test('catalog needs registry:catalog:*', () => {
  assert.deepEqual(accessForRequest('GET', '/v2/_catalog'), { kind: 'catalog', needs: [{ type: 'registry', name: 'catalog', actions: ['*'] }] });
  assert.deepEqual(accessForRequest('DELETE', '/v2/_catalog'), { kind: 'unknown' });
});

test('manifests, blobs, tags, referrers map methods to actions', () => {
  expectAccess('GET', '/v2/alpine/manifests/latest', 'alpine', 'pull', 'manifest');
  expectAccess('HEAD', `/v2/library/alpine/manifests/${D}`, 'library/alpine', 'pull', 'manifest');
  expectAccess('PUT', '/v2/team/app/manifests/v1.2.3', 'team/app', 'push', 'manifest');
  expectAccess('DELETE', `/v2/team/app/manifests/${D}`, 'team/app', 'delete', 'manifest');
  expectAccess('GET', `/v2/a/b/c/blobs/${D}`, 'a/b/c', 'pull', 'blob');
  expectAccess('DELETE', `/v2/a/blobs/${D}`, 'a', 'delete', 'blob');
  expectAccess('GET', '/v2/team/app/tags/list', 'team/app', 'pull', 'tags');
  expectAccess('GET', `/v2/team/app/referrers/${D}`, 'team/app', 'pull', 'referrers');
});

test('uploads: start, chunks, status, finish', () => {
  expectAccess('POST', '/v2/team/app/blobs/uploads/', 'team/app', 'push', 'upload');
  expectAccess('POST', '/v2/team/app/blobs/uploads', 'team/app', 'push', 'upload');
  expectAccess('PATCH', '/v2/team/app/blobs/uploads/3f6b1c2e-7a1d-4c7e-9b1a-0d5c2e8f9a10', 'team/app', 'push', 'upload');
  expectAccess('PUT', '/v2/team/app/blobs/uploads/3f6b1c2e-7a1d-4c7e-9b1a-0d5c2e8f9a10', 'team/app', 'push', 'upload');
  // Every method on an upload URL is part of a push.
  expectAccess('GET', '/v2/team/app/blobs/uploads/abc_DEF=', 'team/app', 'push', 'upload');
  expectAccess('HEAD', '/v2/team/app/blobs/uploads/abc_DEF=', 'team/app', 'push', 'upload');
  expectAccess('DELETE', '/v2/team/app/blobs/uploads/abc', 'team/app', 'push', 'upload');
});

test('names that contain route words resolve the way the registry resolves them', () => {
  expectAccess('PATCH', '/v2/a/b/c/blobs/uploads/uuid-1', 'a/b/c', 'push', 'upload');
  expectAccess('PATCH', '/v2/blobs/uploads/blobs/uploads/uuid-1', 'blobs/uploads', 'push', 'upload');
  expectAccess('POST', '/v2/x/blobs/uploads/blobs/uploads/', 'x/blobs/uploads', 'push', 'upload');
  expectAccess('GET', '/v2/manifests/manifests/latest', 'manifests', 'pull', 'manifest');
  expectAccess('GET', '/v2/x/manifests/v1/blobs/uploads/u', 'x/manifests/v1', 'push', 'upload');
  expectAccess('GET', '/v2/tags/list/tags/list', 'tags/list', 'pull', 'tags');
});

test('percent-encoded ordinary characters are read as the registry reads them', () => {
  expectAccess('GET', `/v2/alpine/blobs/sha256%3A${'a'.repeat(64)}`, 'alpine', 'pull', 'blob');
  expectAccess('GET', '/v2/%61lpine/manifests/latest', 'alpine', 'pull', 'manifest');
});

test('hostile and ambiguous paths are unknown', () => {
  const hostile = [
    '/v2/../v2/a/manifests/latest',
    '/v2/a/../b/manifests/latest',
    '/v2/./a/manifests/latest',
    '/v2/a/%2e%2e/b/manifests/latest',
    '/v2/a%2fb/manifests/latest',
    '/v2/a%2Fb/manifests/latest',
    '/v2/a%5cb/manifests/latest',
    '/v2/a\\b/manifests/latest',
    '/v2//a/manifests/latest',
    '/v2/a//b/manifests/latest',
    '/v2/a/manifests/latest/',
    '/v2/a/manifests/',
    '/v2/a/manifests/%',
    '/v2/a/manifests/la%zztest',
    '/v2/a/manifests/lat%00est',
    '/v2/a%c3%a9/manifests/latest',
    '/v2/A/manifests/latest',
    '/v2/a/blobs/notadigest',
    '/v2/a/referrers/latest',
    '/v2/a/tags/other',
    '/v2/a/unknown/x',
    '/v2/manifests/latest',
    '/v2/blobs/uploads/',
    '/v2/_catalog/x',
    '/v2/a/b c/manifests/latest',
    '/v3/a/manifests/latest',
    '/v2a/manifests/latest',
    '/token',
    '/v2/' + 'a/'.repeat(1100) + 'manifests/latest',
  ];
  for (const path of hostile) assert.deepEqual(accessForRequest('GET', path), { kind: 'unknown' }, path);
});

test('methods without a registry meaning are unknown', () => {
  assert.deepEqual(accessForRequest('OPTIONS', '/v2/a/manifests/latest'), { kind: 'unknown' });
  assert.deepEqual(accessForRequest('TRACE', '/v2/a/manifests/latest'), { kind: 'unknown' });
});

test('a cross-repository mount also needs pull on the source repository', () => {
  const query = q({ mount: D, from: 'team/base' });
  assert.deepEqual(needs('POST', '/v2/team/app/blobs/uploads/', query), [...repo('team/app', 'push'), ...repo('team/base', 'pull')]);
});

test('a mount from a source the rules cannot name is unknown (the registry would also take a host part)', () => {
  for (const from of ['../x', 'localhost:5000/x', 'Team/base', 'a//b']) {
    assert.deepEqual(accessForRequest('POST', '/v2/team/app/blobs/uploads/', q({ mount: D, from })), { kind: 'unknown' }, from);
  }
});

test('every source given, in the query or the form body, is asked; the registry acts on the body first', () => {
  const params = registryParams(`mount=${D}&from=bob/stolen`, Buffer.from(`mount=${D}&from=secret/x`));
  assert.deepEqual(needs('POST', '/v2/bob/q/blobs/uploads/', params), [...repo('bob/q', 'push'), ...repo('secret/x', 'pull'), ...repo('bob/stolen', 'pull')]);
  assert.equal(params.value('from'), 'secret/x');
  assert.equal(params.conflict, 'from');
  const bodyOnly = registryParams('', Buffer.from(`mount=${D}&from=secret/x`));
  assert.deepEqual(needs('POST', '/v2/bob/q/blobs/uploads/', bodyOnly), [...repo('bob/q', 'push'), ...repo('secret/x', 'pull')]);
  assert.equal(bodyOnly.conflict, null);
});

test('a manifest reference is a tag or a digest', () => {
  const tagged = classifyRequest('PUT', '/v2/a/manifests/v1.0', q());
  assert.ok(tagged.kind === 'repository' && tagged.tag === 'v1.0' && tagged.reference === 'v1.0');
  const byDigest = classifyRequest('DELETE', `/v2/a/manifests/${D}`, q());
  assert.ok(byDigest.kind === 'repository' && byDigest.tag === null && byDigest.reference === D);
  const blob = classifyRequest('GET', `/v2/a/blobs/${D}`, q());
  assert.ok(blob.kind === 'repository' && blob.tag === null);
});

test('no extra access when it is not a mount', () => {
  assert.deepEqual(needs('POST', '/v2/app/blobs/uploads/', q({ digest: D }))!.slice(1), []);
  assert.deepEqual(needs('POST', '/v2/app/blobs/uploads/', q({ from: 'base' }))!.slice(1), []);
  assert.deepEqual(needs('PUT', '/v2/app/blobs/uploads/u1', q({ mount: D, from: 'base' }))!.slice(1), []);
  assert.deepEqual(needs('POST', '/v2/app/blobs/uploads/', q({ mount: '', from: 'x' }))!.slice(1), [], 'the registry mounts only when both are non-empty');
  assert.equal(needs('POST', '/v2/a%2fb/blobs/uploads/', q({ mount: D, from: 'x' })), null);
  assert.deepEqual(needs('GET', '/v2/app/tags/list', q({ n: '10', last: 'x' })), repo('app', 'pull'));
});

test("parameters are parsed as Go's url.ParseQuery parses them", () => {
  const rows: [string, Record<string, string[]>][] = [
    ['a=1&a=2&b', { a: ['1', '2'], b: [''] }],
    ['a=%zz&a=2', { a: ['2'] }],
    ['a;b=1&a=2', { a: ['2'] }],
    ['a=1;&a=2', { a: ['2'] }],
    ['fr%6Fm=x+y%2Fz', { from: ['x y/z'] }],
    ['&&=v&k=', { '': ['v'], k: [''] }],
    ['a=%', {}],
  ];
  for (const [text, expected] of rows) assert.deepEqual(Object.fromEntries(parseGoQuery(text)), expected, text);
});

test('which bodies Go reads as a form', () => {
  const rows: [string, string | undefined, string][] = [
    ['POST', 'application/x-www-form-urlencoded', 'urlencoded'],
    ['PATCH', ' Application/X-WWW-Form-Urlencoded ; charset=utf-8', 'urlencoded'],
    ['PUT', 'application/x-www-form-urlencoded;', 'urlencoded'],
    ['GET', 'application/x-www-form-urlencoded', 'none'],
    ['DELETE', 'multipart/form-data; boundary=x', 'multipart'],
    ['POST', 'application/octet-stream', 'none'],
    ['POST', undefined, 'none'],
    ['POST', 'appl\u00c4\u00b0cation/x-www-form-urlencoded', 'unreadable'],
  ];
  for (const [method, contentType, form] of rows) assert.equal(bodyForm(method, contentType), form, `${method} ${contentType}`);
});

test('malformed references and digests of a readable repository: answered as the registry (or the spec) answers, for reads only', () => {
  const pull = (name: string) => [{ type: 'repository', name, actions: ['pull'] }];
  for (const method of ['GET', 'HEAD']) {
    assert.deepEqual(accessForRequest(method, '/v2/ns/app/manifests/.INVALID_MANIFEST_NAME'), {
      kind: 'malformed',
      name: 'ns/app',
      needs: pull('ns/app'),
      code: 'MANIFEST_UNKNOWN',
      message: 'manifest unknown: ".INVALID_MANIFEST_NAME" is neither a tag nor a digest',
    });
    const shortDigest = accessForRequest(method, '/v2/ns/app/blobs/sha256:abc');
    assert.ok(shortDigest.kind === 'malformed' && shortDigest.code === 'DIGEST_INVALID', JSON.stringify(shortDigest));
    const upperHex = accessForRequest(method, `/v2/ns/app/manifests/sha256:${'A'.repeat(64)}`);
    assert.ok(upperHex.kind === 'malformed' && upperHex.code === 'DIGEST_INVALID');
  }
  assert.equal(accessForRequest('GET', `/v2/ns/app/blobs/sha256:${'a'.repeat(64)}`).kind, 'repository');
  assert.equal(accessForRequest('GET', `/v2/ns/app/blobs/sha384:${'a'.repeat(5)}`).kind, 'repository', 'an algorithm whose length the gate does not fix: the registry decides');
  for (const method of ['PUT', 'DELETE']) assert.deepEqual(accessForRequest(method, '/v2/ns/app/manifests/.INVALID_MANIFEST_NAME'), { kind: 'unknown' }, `${method}: writes stay refused`);
  assert.deepEqual(accessForRequest('GET', '/v2/NS/app/manifests/.x'), { kind: 'unknown' }, 'a name the rules cannot read stays unknown');
  assert.equal(accessForRequest('GET', '/v2/a/manifests/-bad').kind, 'malformed');
});
