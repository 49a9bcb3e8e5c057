import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hostMatcher, knownNames } from '../../src/proxy/known-hosts.js';
import { defaultConfig } from '../../src/config/defaults.js';
import type { Config } from '../../src/config/types.js';

function config(tls: Partial<Config['tls']>, tokenRealm: string | null = null): Config {
  const base = defaultConfig();
  return { ...base, tls: { ...base.tls, ...tls }, auth: { ...base.auth, tokenRealm } };
}

test('the names the config gives the proxy', () => {
  const acme = { ...defaultConfig().tls.acme, domains: ['Registry.Example.com'] };
  const rows: [Config, string[]][] = [
    [config({ mode: 'self-signed', names: ['localhost', '::1', '0:0:0:0:0:0:0:1'] }), ['localhost', '::1']],
    [config({ mode: 'acme', acme }), ['registry.example.com']],
    [config({ mode: 'files' }), []],
    [config({ mode: 'off' }, 'https://reg.example.org:5443/token'), ['reg.example.org']],
    [config({ mode: 'files' }, 'https://[::1]:5443/token'), ['::1']],
  ];
  for (const [c, names] of rows) assert.deepEqual(knownNames(c), names, JSON.stringify([c.tls.mode, c.auth.tokenRealm]));
});

test('which Host values match', () => {
  const known = hostMatcher(['registry.example.com', '::1', '127.0.0.1']);
  const rows: [string, boolean][] = [
    ['registry.example.com', true],
    ['REGISTRY.example.com:443', true],
    ['registry.example.com.:5443', true],
    ['[::1]:5443', true],
    ['[0:0::1]', true],
    ['127.0.0.1:80', true],
    ['evil.example', false],
    ['registry.example.com.evil', false],
    ['registry.example.com@evil', false],
    ['', false],
    ['::1', false],
  ];
  for (const [host, expected] of rows) assert.equal(known(host), expected, host);
  assert.equal(hostMatcher([])('anything.example'), true, 'no names known: every host');
});
