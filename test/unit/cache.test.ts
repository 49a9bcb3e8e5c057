import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { cachePlan as planFor } from '../../src/cache/plan.js';
import { classifyRequest } from '../../src/registry/route.js';
import { registryParams } from '../../src/registry/inputs.js';

const cachePlan = (method: string, path: string, headers: IncomingHttpHeaders) => planFor(method, classifyRequest(method, path, registryParams('')), headers);
import { ResponseStore } from '../../src/cache/store.js';
import { ResponseCache } from '../../src/cache/response-cache.js';

const DIGEST = `sha256:${'a'.repeat(64)}`;

describe('cache plan: what may be answered from memory', () => {
  test('manifest GET and HEAD, blob HEAD are reads; the key holds endpoint, repository, reference and Accept', () => {
    const get = cachePlan('GET', '/v2/team/app/manifests/latest', { accept: 'application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json' });
    assert.deepEqual(get, {
      kind: 'read',
      repository: 'team/app',
      key: 'manifest\nteam/app\nlatest\napplication/vnd.oci.image.index.v1+json,application/vnd.docker.distribution.manifest.v2+json',
      needsBody: true,
    });
    const head = cachePlan('HEAD', '/v2/team/app/manifests/latest', { accept: 'application/vnd.oci.image.index.v1+json,application/vnd.docker.distribution.manifest.v2+json' });
    assert.equal(head?.kind === 'read' && head.key, get?.kind === 'read' && get.key, 'HEAD and GET with the same Accept share an entry');
    assert.equal(head?.kind === 'read' && head.needsBody, false);
    const otherAccept = cachePlan('GET', '/v2/team/app/manifests/latest', { accept: 'application/vnd.oci.image.manifest.v1+json' });
    assert.notEqual(otherAccept?.kind === 'read' && otherAccept.key, get?.kind === 'read' && get.key);
    assert.deepEqual(cachePlan('HEAD', `/v2/team/app/blobs/${DIGEST}`, { accept: 'x/y' }), {
      kind: 'read',
      repository: 'team/app',
      key: `blob\nteam/app\n${DIGEST}\n`,
      needsBody: false,
    });
  });

  test('blob bodies, uploads, tags, catalog and unreadable paths are left alone', () => {
    assert.equal(cachePlan('GET', `/v2/team/app/blobs/${DIGEST}`, {}), null);
    assert.equal(cachePlan('PATCH', '/v2/team/app/blobs/uploads/abc', {}), null);
    assert.equal(cachePlan('POST', '/v2/team/app/blobs/uploads/', {}), null);
    assert.equal(cachePlan('PUT', '/v2/team/app/blobs/uploads/abc', {}), null);
    assert.equal(cachePlan('GET', '/v2/team/app/tags/list', {}), null);
    assert.equal(cachePlan('GET', '/v2/_catalog', {}), null);
    assert.equal(cachePlan('GET', '/v2/', {}), null);
    assert.equal(cachePlan('GET', '/v2/team/%2e%2e/manifests/latest', {}), null);
  });

  test('conditional, ranged and no-cache requests ask the registry', () => {
    const path = '/v2/team/app/manifests/latest';
    for (const headers of [{ range: 'bytes=0-1' }, { 'if-none-match': '"x"' }, { 'if-modified-since': 'x' }, { 'cache-control': 'no-cache' }, { 'cache-control': 'max-age=0' }, { pragma: 'no-cache' }]) {
      assert.equal(cachePlan('GET', path, headers), null, JSON.stringify(headers));
    }
  });

  test('manifest PUT and any DELETE are writes to their repository', () => {
    assert.deepEqual(cachePlan('PUT', '/v2/team/app/manifests/latest', {}), { kind: 'write', repository: 'team/app' });
    assert.deepEqual(cachePlan('DELETE', `/v2/team/app/manifests/${DIGEST}`, {}), { kind: 'write', repository: 'team/app' });
    assert.deepEqual(cachePlan('DELETE', `/v2/team/app/blobs/${DIGEST}`, {}), { kind: 'write', repository: 'team/app' });
  });
});

function clockedStore(opts: { ttlMs?: number; maxBytes?: number; maxEntryBytes?: number } = {}) {
  const clock = { t: 1_000_000 };
  const store = new ResponseStore({ ttlMs: opts.ttlMs ?? 2000, maxBytes: opts.maxBytes ?? 1 << 20, maxEntryBytes: opts.maxEntryBytes ?? 1 << 19, now: () => clock.t });
  return { store, clock };
}

const answer = (text: string | null) => ({ headers: { 'content-type': 'text/plain' }, body: text === null ? null : Buffer.from(text) });

describe('response store', () => {
  test('an entry lives for the TTL, then is gone', () => {
    const { store, clock } = clockedStore({ ttlMs: 2000 });
    assert.equal(store.store('k', 'r', store.mark(), answer('one')), true);
    clock.t += 1999;
    assert.equal(store.lookup('k', true)?.body?.toString(), 'one');
    clock.t += 1;
    assert.equal(store.lookup('k', true), null);
    assert.equal(store.sizeBytes, 0);
  });

  test('a HEAD-only entry answers HEADs, not GETs, and never replaces a GET entry', () => {
    const { store } = clockedStore();
    store.store('k', 'r', store.mark(), answer(null));
    assert.ok(store.lookup('k', false));
    assert.equal(store.lookup('k', true), null);
    store.store('k', 'r', store.mark(), answer('body'));
    assert.equal(store.store('k', 'r', store.mark(), answer(null)), false);
    assert.equal(store.lookup('k', true)?.body?.toString(), 'body');
  });

  test('a write drops the repository’s entries and only those', () => {
    const { store } = clockedStore();
    store.store('a1', 'a', store.mark(), answer('a1'));
    store.store('a2', 'a', store.mark(), answer('a2'));
    store.store('b1', 'b', store.mark(), answer('b1'));
    store.invalidate('a');
    assert.equal(store.lookup('a1', true), null);
    assert.equal(store.lookup('a2', true), null);
    assert.equal(store.lookup('b1', true)?.body?.toString(), 'b1');
  });

  test('a fill that began before a write to its repository is thrown away', () => {
    const { store } = clockedStore();
    const before = store.mark();
    store.invalidate('r');
    assert.equal(store.store('k', 'r', before, answer('old tag')), false);
    assert.equal(store.lookup('k', true), null);
    assert.equal(store.store('k', 'other', before, answer('other repository')), true);
    assert.equal(store.store('k2', 'r', store.mark(), answer('after the write')), true);
  });

  test('forgetting old writes in bulk never lets a racing fill through', () => {
    const { store } = clockedStore();
    const before = store.mark();
    store.invalidate('r');
    for (let i = 0; i < 10_001; i++) store.invalidate(`other-${i}`);
    assert.equal(store.store('k', 'r', before, answer('old tag')), false);
  });

  test('past maxBytes the least recently used entries go first; oversized answers are not kept', () => {
    const { store } = clockedStore({ maxBytes: 3 * (1024 + 100), maxEntryBytes: 2000 });
    const body = 'x'.repeat(100);
    store.store('a', 'r', store.mark(), answer(body));
    store.store('b', 'r', store.mark(), answer(body));
    store.store('c', 'r', store.mark(), answer(body));
    store.lookup('a', true);
    store.store('d', 'r', store.mark(), answer(body));
    assert.ok(store.lookup('a', true), 'recently used survives');
    assert.equal(store.lookup('b', true), null, 'least recently used is evicted');
    assert.ok(store.sizeBytes <= 3 * (1024 + 100));
    assert.equal(store.store('big', 'r', store.mark(), answer('y'.repeat(2000))), false);
  });

  test('a fill under way is visible to others until it ends', async () => {
    const { store } = clockedStore();
    assert.equal(store.pending('k'), undefined);
    const end = store.beginFill('k');
    const waiting = store.pending('k');
    assert.ok(waiting);
    end();
    end();
    await waiting;
    assert.equal(store.pending('k'), undefined);
  });
});

describe('when replicas stop hearing each other (invalidations away)', () => {
  test('clear() drops every entry and throws away fills begun before it', () => {
    const { store } = clockedStore();
    store.store('a1', 'a', store.mark(), answer('a1'));
    const before = store.mark();
    store.clear();
    assert.equal(store.lookup('a1', true), null);
    assert.equal(store.sizeBytes, 0);
    assert.equal(store.store('b1', 'b', before, answer('raced the clear')), false);
    assert.equal(store.store('b1', 'b', store.mark(), answer('after')), true);
  });

  test('not shared: reads are not planned (not answered from memory), writes still are; shared again: reads are', () => {
    const cache = new ResponseCache({ ttlSeconds: 300, maxMegabytes: 1 });
    const route = (method: string, path: string) => classifyRequest(method, path, registryParams(''));
    const read = () => cache.plan('GET', route('GET', '/v2/team/app/manifests/latest'), {});
    const write = () => cache.plan('PUT', route('PUT', '/v2/team/app/manifests/latest'), {});
    assert.equal(read()?.kind, 'read');
    cache.setShared(false);
    assert.equal(read(), null);
    assert.deepEqual(write(), { kind: 'write', repository: 'team/app' });
    cache.setShared(true);
    assert.equal(read()?.kind, 'read');
  });
});
