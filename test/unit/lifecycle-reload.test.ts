import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultConfig } from '../../src/config/defaults.js';
import type { Config } from '../../src/config/types.js';
import { planReload, withReloaded } from '../../src/lifecycle/reload.js';

const base = (): Config => ({ ...defaultConfig(), listen: '127.0.0.1:5443', upstream: 'http://127.0.0.1:5000' });

const cases: [string, (c: Config) => void, { apply: string[]; atNextStart: string[] }][] = [
  ['nothing changed', () => {}, { apply: [], atNextStart: [] }],
  ['a rule added', (c) => (c.access = [{ who: ['alice'], repositories: ['**'], actions: ['pull'] }]), { apply: ['access'], atNextStart: [] }],
  ['a group member added', (c) => (c.groups = { devs: ['bob'] }), { apply: ['groups'], atNextStart: [] }],
  ['the htgroup file moved', (c) => (c.groupsFile = '/etc/registry-gate/htgroup'), { apply: ['groupsFile'], atNextStart: [] }],
  ['a protected tag', (c) => (c.protectedTags = [{ repositories: ['**'], tags: ['v*'], who: [] }]), { apply: ['protectedTags'], atNextStart: [] }],
  ['publicCatalog and the log level', (c) => ((c.auth.publicCatalog = true), (c.log.level = 'debug')), { apply: ['auth.publicCatalog', 'log.level'], atNextStart: [] }],
  ['the auth mode', (c) => (c.auth.mode = 'none'), { apply: [], atNextStart: ['auth.mode'] }],
  ['listen, upstream and a limit', (c) => ((c.listen = '127.0.0.1:6000'), (c.upstream = 'http://127.0.0.1:5001'), (c.limits.bodyIdleSeconds = 5)), { apply: [], atNextStart: ['limits.bodyIdleSeconds', 'listen', 'upstream'] }],
  ['a rule and the TLS mode', (c) => ((c.access = []), (c.tls.mode = 'off')), { apply: ['access'], atNextStart: ['tls.mode'] }],
];

for (const [name, change, expected] of cases) {
  test(`reload plan: ${name}`, () => {
    const next = structuredClone(base());
    change(next);
    assert.deepEqual(planReload(base(), next), expected);
  });
}

test('after a reload only the reloadable keys run with their new values; the next plan compares against them', () => {
  const next = structuredClone(base());
  next.access = [];
  next.auth.publicCatalog = true;
  next.auth.mode = 'none';
  next.listen = '127.0.0.1:6000';
  const running = withReloaded(base(), next);
  assert.deepEqual(running.access, []);
  assert.equal(running.auth.publicCatalog, true);
  assert.equal(running.auth.mode, base().auth.mode);
  assert.equal(running.listen, base().listen);
  assert.deepEqual(planReload(running, next), { apply: [], atNextStart: ['auth.mode', 'listen'] });
});
