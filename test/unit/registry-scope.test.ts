import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatScope, isRepositoryName, mergeAccess, parseScope } from '../../src/registry/scope.js';

test('repository scopes with one or several actions', () => {
  assert.deepEqual(parseScope('repository:library/alpine:pull'), { type: 'repository', name: 'library/alpine', actions: ['pull'] });
  assert.deepEqual(parseScope('repository:a/b/c:pull,push'), { type: 'repository', name: 'a/b/c', actions: ['pull', 'push'] });
  assert.deepEqual(parseScope('repository:x:push,pull,push,'), { type: 'repository', name: 'x', actions: ['push', 'pull'] });
});

test('resource class and the catalog', () => {
  assert.deepEqual(parseScope('repository(plugin):vieux/sshfs:pull'), { type: 'repository', class: 'plugin', name: 'vieux/sshfs', actions: ['pull'] });
  assert.deepEqual(parseScope('registry:catalog:*'), { type: 'registry', name: 'catalog', actions: ['*'] });
});

test('invalid scopes are null', () => {
  const bad = [
    '',
    'repository',
    'repository:alpine',
    'repository:alpine:',
    'repository::pull',
    'repository:Alpine:pull',
    'repository:alpine/:pull',
    'repository:/alpine:pull',
    'repository:a//b:pull',
    'repository:../etc:pull',
    'repository:localhost:5000/alpine:pull',
    'repository:alpine:pull;rm',
    'repository:alpine:PULL',
    'registry:other:*',
    'registry(x):catalog:*',
    'unknown:thing:pull',
    'Repository:alpine:pull',
    `repository:${'a'.repeat(256)}:pull`,
    `repository:a:${'pull,'.repeat(200)}`,
  ];
  for (const s of bad) assert.equal(parseScope(s), null, s);
});

test('repository name grammar (distribution path components)', () => {
  for (const ok of ['a', 'a0', 'library/alpine', 'my-app', 'my--app', 'my_app', 'my__app', 'my.app', 'a/b/c/d', 'a'.repeat(255)]) {
    assert.equal(isRepositoryName(ok), true, ok);
  }
  for (const bad of ['', '-a', 'a-', 'a..b', 'a___b', 'a._b', '_a', 'A', 'a/', 'a b', 'a:b', 'a'.repeat(256)]) {
    assert.equal(isRepositoryName(bad), false, bad);
  }
});

test('a hostile name is rejected fast (no catastrophic backtracking)', () => {
  const started = process.hrtime.bigint();
  assert.equal(isRepositoryName('a'.repeat(250) + '!'), false);
  assert.equal(parseScope(`repository:${'a0'.repeat(120)}-:pull`), null);
  assert.ok(Number(process.hrtime.bigint() - started) / 1e6 < 50);
});

test('formatScope round-trips', () => {
  for (const s of ['repository:library/alpine:pull,push', 'repository(plugin):vieux/sshfs:pull', 'registry:catalog:*']) {
    assert.equal(formatScope(parseScope(s)!), s);
  }
});

test('mergeAccess unites actions per resource', () => {
  const merged = mergeAccess([parseScope('repository:a:pull')!, parseScope('repository:b:pull')!, parseScope('repository:a:push')!]);
  assert.deepEqual(merged, [
    { type: 'repository', name: 'a', actions: ['pull', 'push'] },
    { type: 'repository', name: 'b', actions: ['pull'] },
  ]);
});
