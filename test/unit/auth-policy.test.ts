import { test } from 'node:test';
import assert from 'node:assert/strict';
import { grantedActions, intersect } from '../../src/auth/policy.js';
import type { Access } from '../../src/auth/scope.js';

const repo: Access = { type: 'repository', name: 'team/app', actions: ['pull', 'push', 'delete'] };
const catalog: Access = { type: 'registry', name: 'catalog', actions: ['*'] };
const closed = { publicCatalog: false };
const open = { publicCatalog: true };

test('none: everything asked', () => {
  assert.deepEqual(grantedActions('none', null, repo, closed), ['pull', 'push', 'delete']);
  assert.deepEqual(grantedActions('none', null, catalog, closed), ['*']);
});

test('read-public: anonymous may pull repositories, list only when the catalog is public', () => {
  assert.deepEqual(grantedActions('read-public', null, repo, closed), ['pull']);
  assert.deepEqual(grantedActions('read-public', null, catalog, closed), []);
  assert.deepEqual(grantedActions('read-public', null, catalog, open), ['*']);
});

test('private: anonymous gets nothing, even with a public catalog', () => {
  assert.deepEqual(grantedActions('private', null, repo, open), []);
  assert.deepEqual(grantedActions('private', null, catalog, open), []);
});

test('authenticated users: pull, push, delete and the catalog, in both modes', () => {
  for (const mode of ['private', 'read-public'] as const) {
    assert.deepEqual(grantedActions(mode, 'alice', repo, closed), ['pull', 'push', 'delete']);
    assert.deepEqual(grantedActions(mode, 'alice', catalog, closed), ['*']);
    assert.deepEqual(grantedActions(mode, 'alice', { type: 'something', name: 'x', actions: ['pull'] }, closed), []);
  }
});

test('intersect keeps the asked order, drops what is not granted', () => {
  assert.deepEqual(intersect(['push', 'pull'], ['pull']), ['pull']);
  assert.deepEqual(intersect(['push', 'pull', 'push'], ['pull', 'push', 'delete']), ['push', 'pull']);
  assert.deepEqual(intersect(['pull'], []), []);
  assert.deepEqual(intersect(['*'], ['*']), ['*']);
  assert.deepEqual(intersect(['metadata-read'], ['pull', 'push', 'delete']), []);
});
