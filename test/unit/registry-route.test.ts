import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyRequest, type Route } from '../../src/registry/route.js';

const D = 'sha256:' + 'a'.repeat(64);
const ACTIONS: Record<string, string[]> = { pull: ['pull'], push: ['pull', 'push'], delete: ['delete'] };
const repo = (name: string, action: string) => [{ type: 'repository', name, actions: ACTIONS[action]! }];
const accessForRequest = (method: string, path: string, query = new URLSearchParams()): Route => classifyRequest(method, path, query);
const needs = (method: string, path: string, query: URLSearchParams) => {
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
    '/v2/a/manifests/-bad',
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
  const query = new URLSearchParams({ mount: D, from: 'team/base' });
  assert.deepEqual(needs('POST', '/v2/team/app/blobs/uploads/', query), [...repo('team/app', 'push'), ...repo('team/base', 'pull')]);
});

test('a manifest reference is a tag or a digest', () => {
  const tagged = classifyRequest('PUT', '/v2/a/manifests/v1.0', new URLSearchParams());
  assert.ok(tagged.kind === 'repository' && tagged.tag === 'v1.0' && tagged.reference === 'v1.0');
  const byDigest = classifyRequest('DELETE', `/v2/a/manifests/${D}`, new URLSearchParams());
  assert.ok(byDigest.kind === 'repository' && byDigest.tag === null && byDigest.reference === D);
  const blob = classifyRequest('GET', `/v2/a/blobs/${D}`, new URLSearchParams());
  assert.ok(blob.kind === 'repository' && blob.tag === null);
});

test('no extra access when it is not a mount', () => {
  assert.deepEqual(needs('POST', '/v2/app/blobs/uploads/', new URLSearchParams({ digest: D }))!.slice(1), []);
  assert.deepEqual(needs('POST', '/v2/app/blobs/uploads/', new URLSearchParams({ from: 'base' }))!.slice(1), []);
  assert.deepEqual(needs('PUT', '/v2/app/blobs/uploads/u1', new URLSearchParams({ mount: D, from: 'base' }))!.slice(1), []);
  assert.deepEqual(needs('POST', '/v2/app/blobs/uploads/', new URLSearchParams({ mount: D, from: '../x' }))!.slice(1), []);
  assert.equal(needs('POST', '/v2/a%2fb/blobs/uploads/', new URLSearchParams({ mount: D, from: 'x' })), null);
  assert.deepEqual(needs('GET', '/v2/app/tags/list', new URLSearchParams({ n: '10', last: 'x' })), repo('app', 'pull'));
});
