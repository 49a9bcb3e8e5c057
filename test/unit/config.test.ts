import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import { parseListenAddress } from '../../src/config/address.js';

function configFile(content: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'rg-config-'));
  const file = join(dir, 'proxy.config.json');
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

function problemsOf(file: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    loadConfig(file, env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems;
  }
  assert.fail('expected the config to be rejected');
}

test('the shipped proxy.config.json is valid as it is', () => {
  const { config } = loadConfig('proxy.config.json', {});
  assert.equal(config.tls.mode, 'self-signed');
  assert.equal(config.auth.mode, 'read-public');
  assert.equal(config.auth.challenge, 'token');
});

test('an empty object gets the defaults, with paths resolved against the config file', () => {
  const file = configFile({});
  const { config } = loadConfig(file, {});
  const dir = file.replace(/\/proxy\.config\.json$/, '');
  assert.equal(config.upstream, 'http://127.0.0.1:5000');
  assert.equal(config.stateDir, join(dir, 'data'));
  assert.equal(config.auth.htpasswdFile, join(dir, 'auth/htpasswd'));
  assert.equal(config.tls.acme.storageDir, join(dir, 'data/acme'));
  assert.equal(config.upstreamTimeoutSeconds, 900);
  assert.deepEqual(config.cache, { ttlSeconds: 2, maxMegabytes: 16 });
});

test('unknown keys are named, with the keys that exist', () => {
  const problems = problemsOf(configFile({ auth: { mode: 'private', realmm: 'x' }, listn: ':1' }));
  assert.ok(problems.some((p) => p.startsWith('auth.realmm: unknown key') && p.includes('realm')), problems.join('\n'));
  assert.ok(problems.some((p) => p.startsWith('listn: unknown key')), problems.join('\n'));
});

test('wrong types and values name the key and what was expected', () => {
  const problems = problemsOf(
    configFile({ auth: { mode: 'public', tokenTtlSeconds: 5 }, upstreamTimeoutSeconds: '900', trustedProxies: ['10.0.0.0/33'], upstream: 'ftp://x' }),
  );
  const text = problems.join('\n');
  assert.match(text, /auth\.mode: must be one of "private", "read-public", "none", got "public"/);
  assert.match(text, /auth\.tokenTtlSeconds: must be between 10 and 86400, got 5/);
  assert.match(text, /upstreamTimeoutSeconds: expected a number, got "900"/);
  const cache = problemsOf(configFile({ cache: { ttlSeconds: -1, maxMegabytes: 0.5 } })).join('\n');
  assert.match(cache, /cache\.ttlSeconds: must be between 0 and 300, got -1/);
  assert.match(cache, /cache\.maxMegabytes: .*whole number|cache\.maxMegabytes: .*integer/);
});

test('impossible combinations are rejected after merging', () => {
  const text = problemsOf(configFile({ trustedProxies: ['10.0.0.0/33'], upstream: 'ftp://x', listen: 'nope', blockUserAgents: ['('] })).join('\n');
  assert.match(text, /trustedProxies\[0\]: "10\.0\.0\.0\/33" is not an IP address or CIDR/);
  assert.match(text, /upstream: scheme must be http: or https:/);
  assert.match(text, /listen: expected "host:port"/);
  assert.match(text, /blockUserAgents\[0\]: not a valid regular expression/);
  const acme = problemsOf(configFile({ tls: { mode: 'acme', acme: { domains: ['registry.example.com'], challenges: ['http-01'] } } })).join('\n');
  assert.match(acme, /"http-01" needs httpListen/);
});

test('a JSON syntax error names the line', () => {
  const text = problemsOf(configFile('{\n  "listen": "0.0.0.0:443",\n  "upstream": "http://x:5000",\n}\n')).join('\n');
  assert.match(text, /not valid JSON: .* at line 4/);
});

test('REGGATE_* variables override the file, typed by the key', () => {
  const file = configFile({ auth: { mode: 'read-public' } });
  const { config, envApplied } = loadConfig(file, {
    REGGATE_AUTH_MODE: 'private',
    REGGATE_UPSTREAM: 'http://registry:5000',
    REGGATE_TLS_ACME_DOMAINS: 'a.example.com, b.example.com',
    REGGATE_AUTH_PUBLICCATALOG: 'true',
    REGGATE_UPSTREAMTIMEOUTSECONDS: '60',
    REGGATE_HTTPLISTEN: 'null',
    REGGATE_TLS_ACME_EAB: '{"kid":"k","hmacKey":"h"}',
    REGGATE_CACHE_TTLSECONDS: '0',
    PATH: '/bin',
  });
  assert.equal(config.cache.ttlSeconds, 0);
  assert.equal(config.auth.mode, 'private');
  assert.equal(config.upstream, 'http://registry:5000');
  assert.deepEqual(config.tls.acme.domains, ['a.example.com', 'b.example.com']);
  assert.equal(config.auth.publicCatalog, true);
  assert.equal(config.upstreamTimeoutSeconds, 60);
  assert.deepEqual(config.tls.acme.eab, { kid: 'k', hmacKey: 'h' });
  assert.equal(envApplied.length, 8);
});

test('a REGGATE_* variable that names no key, or has the wrong type, is rejected', () => {
  const text = problemsOf(configFile({}), { REGGATE_AUTH_MOED: 'private', REGGATE_UPSTREAMTIMEOUTSECONDS: 'soon' }).join('\n');
  assert.match(text, /REGGATE_AUTH_MOED: no such config key/);
  assert.match(text, /REGGATE_UPSTREAMTIMEOUTSECONDS: expected a number, got "soon"/);
});

test('listen addresses', () => {
  assert.deepEqual(parseListenAddress('0.0.0.0:443'), { host: '0.0.0.0', port: 443 });
  assert.deepEqual(parseListenAddress('[::1]:5443'), { host: '::1', port: 5443 });
  assert.deepEqual(parseListenAddress('8443'), { host: '0.0.0.0', port: 8443 });
  assert.ok('error' in parseListenAddress('host:99999'));
  assert.ok('error' in parseListenAddress('[nothex]:80'));
});

test('`config check` exits 2 naming the key; masks secrets when valid', () => {
  const bad = spawnSync(process.execPath, ['dist/cli/main.js', 'config', 'check', '--config', configFile({ auth: { mode: 'nope' } })], { encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /auth\.mode: must be one of/);
  const good = spawnSync(
    process.execPath,
    ['dist/cli/main.js', 'config', 'check', '--config', configFile({ redis: 'redis://:hunter2@127.0.0.1:6379/0', tls: { acme: { eab: { kid: 'kid1', hmacKey: 'sekrit' } } } })],
    { encoding: 'utf8' },
  );
  assert.equal(good.status, 0, good.stderr);
  assert.doesNotMatch(good.stdout, /hunter2|sekrit/);
  assert.match(good.stdout, /127\.0\.0\.1:6379/);
  assert.match(good.stdout, /"kid": "kid1"/);
});
