import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
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
    ['dist/cli/main.js', 'config', 'check', '--config', configFile({ redis: 'redis://:hunter2@127.0.0.1:6379/0', redisOptions: { secretKey: 'sealing-secret:that-must-not-show-anywhere' }, tls: { acme: { eab: { kid: 'kid1', hmacKey: 'sekrit' } } } })],
    { encoding: 'utf8' },
  );
  assert.equal(good.status, 0, good.stderr);
  assert.doesNotMatch(good.stdout, /hunter2|sekrit|sealing-secret/);
  assert.match(good.stdout, /127\.0\.0\.1:6379/);
  assert.match(good.stdout, /"kid": "kid1"/);
});

test('access rules, groups and protected tags: each problem named by its key path', () => {
  const problems = problemsOf(
    configFile({
      auth: { mode: 'private' },
      access: [
        { who: ['group:team-a'], repositories: ['team-a/**'], actions: ['pull', 'push'] },
        { who: ['users:bob'], repositories: ['a/***'], actions: ['pull', 'write'] },
        { repositories: ['x'], actions: [], colour: 'red' },
        'everything',
      ],
      groups: { 'team-a': ['alice', 'bad user'], 'b c': [] },
      protectedTags: [{ repositories: ['**'], tags: ['v*/x'], who: ['group:nobody'] }],
    }),
  );
  const expected = [
    /^access\[1\]\.actions\[1\]: must be one of "pull", "push", "delete", "\*", got "write"$/,
    /^access\[2\]: missing "who"$/,
    /^access\[2\]\.colour: unknown key/,
    /^access\[3\]: expected an object, got "everything"$/,
  ];
  for (const pattern of expected) assert.ok(problems.some((p) => pattern.test(p)), `${pattern}\n${problems.join('\n')}`);

  const semantic = problemsOf(
    configFile({
      auth: { mode: 'private' },
      access: [{ who: ['users:bob', 'group:ghosts'], repositories: ['a/***', '$HOME'], actions: ['pull'] }],
      groups: { 'team-a': ['alice', 'bad user'] },
      protectedTags: [{ repositories: ['**'], tags: ['v*/x'], who: ['group:nobody'] }],
    }),
  );
  const expectedSemantic = [
    /^access\[0\]\.who\[0\]: "users:bob" is not a subject/,
    /^access\[0\]\.who\[1\]: group "ghosts" is not defined; add it to "groups" or set "groupsFile"$/,
    /^access\[0\]\.repositories\[0\]: "a\/\*\*\*" has "\*\*\*"/,
    /^access\[0\]\.repositories\[1\]: "\$HOME" uses "\$"/,
    /^groups\.team-a\[1\]: "bad user" is not a user name/,
    /^protectedTags\[0\]\.who\[0\]: group "nobody" is not defined/,
    /^protectedTags\[0\]\.tags\[0\]: "v\*\/x" must not contain "\/"/,
  ];
  for (const pattern of expectedSemantic) assert.ok(semantic.some((p) => pattern.test(p)), `${pattern}\n${semantic.join('\n')}`);
});

test('access needs users: with auth.mode "none" it is refused', () => {
  const problems = problemsOf(configFile({ auth: { mode: 'none' }, access: [{ who: ['*'], repositories: ['**'], actions: ['pull'] }] }));
  assert.ok(problems.some((p) => p.startsWith('access: rules need users')), problems.join('\n'));
});

test('access from the environment as JSON; groupsFile and audit.file resolved against the config file', () => {
  const file = configFile({ auth: { mode: 'private' }, groupsFile: 'auth/htgroup', audit: { file: 'logs/audit.jsonl' } });
  const rules = [{ who: ['group:ops'], repositories: ['**'], actions: ['*'] }];
  const { config, warnings } = loadConfig(file, { REGGATE_ACCESS: JSON.stringify(rules) });
  assert.deepEqual(config.access, rules);
  assert.equal(config.groupsFile, join(file, '..', 'auth/htgroup'));
  assert.equal(config.audit.file, join(file, '..', 'logs/audit.jsonl'));
  assert.deepEqual(warnings, []);
  assert.ok(problemsOf(file, { REGGATE_ACCESS: '[{"who":[]}]' }).some((p) => p.includes('access[0].who: needs at least 1 entry')));
});

test('a rule granting push without pull is valid but warned about', () => {
  const { warnings } = loadConfig(configFile({ auth: { mode: 'private' }, access: [{ who: ['authenticated'], repositories: ['drop/**'], actions: ['push'] }] }), {});
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /^access\[0\]: grants push without pull/);
  const short = loadConfig(configFile({ auth: { tokenTtlSeconds: 10 } }), {}).warnings;
  assert.deepEqual(short, ['auth.tokenTtlSeconds: 10 is below the token specification\'s minimum; tokens live 60 s (docker and podman use a token that long whatever it says, and a shorter one failed their pushes)']);
  assert.deepEqual(loadConfig(configFile({ auth: { tokenTtlSeconds: 60 } }), {}).warnings, []);
});

test('operator input that could hurt: a backtracking blockUserAgents pattern is refused, a world-trusting proxy list warned about, port 0 allowed', () => {
  const problems = problemsOf(configFile({ blockUserAgents: ['^curl/', '^(a+)+$'] }));
  assert.deepEqual(problems.filter((p) => p.startsWith('blockUserAgents')), [
    'blockUserAgents[1]: "^(a+)+$" can take exponential time on a crafted User-Agent (a repeated group holding a quantifier, like (a+)+); rewrite it without nested repetition',
  ]);
  const { warnings } = loadConfig(configFile({ listen: '127.0.0.1:0', trustedProxies: ['10.0.0.0/8', '0.0.0.0/0'] }), {});
  assert.deepEqual(parseListenAddress('127.0.0.1:0'), { host: '127.0.0.1', port: 0 });
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /^trustedProxies\[1\]: "0\.0\.0\.0\/0" trusts every IPv4 address: any client can then set X-Forwarded-For/);
  assert.ok(loadConfig(configFile({}), {}).warnings.length === 0, 'the defaults warn about nothing');
});

test('redisOptions: sentinels as host:port, only with redis, a CA only for rediss://, a secret key to seal with', () => {
  const text = (over: object) => problemsOf(configFile(over)).join('\n');
  const valid = (over: object) => assert.doesNotThrow(() => loadConfig(configFile(over), {}));
  const secretKey = 'k'.repeat(32);
  assert.match(text({ redis: 'redis://mymaster/0', redisOptions: { secretKey, sentinels: ['10.0.0.5', '10.0.0.6:26379'] } }), /redisOptions\.sentinels\[0\]: expected "host:port" of a Redis Sentinel, got "10\.0\.0\.5"/);
  valid({ redis: 'redis://mymaster/0', redisOptions: { secretKey, sentinels: ['10.0.0.6:26379', '[::1]:26379'] } });
  assert.match(text({ redisOptions: { sentinels: ['10.0.0.6:26379'] } }), /redisOptions: set only with "redis"/);
  assert.match(text({ redis: 'redis://127.0.0.1:6379/0', redisOptions: { secretKey, caFile: './ca.pem' } }), /redisOptions\.caFile: only used for TLS to Redis; write "redis" as rediss:\/\//);
  valid({ redis: 'rediss://127.0.0.1:6379/0', redisOptions: { secretKey, caFile: './ca.pem' } });
  assert.match(text({ redis: 'redis://127.0.0.1:6379/0' }), /^redisOptions\.secretKeyFile: required with "redis" .*openssl rand -base64 32/m);
  assert.match(text({ redis: 'redis://127.0.0.1:6379/0', redisOptions: { secretKey: 'short' } }), /redisOptions\.secretKey: at least 32 characters/);
  assert.match(text({ redis: 'redis://127.0.0.1:6379/0', redisOptions: { secretKey, secretKeyFile: './s' } }), /either secretKey or secretKeyFile, not both/);
  valid({ redis: 'redis://127.0.0.1:6379/0', redisOptions: { secretKeyFile: './redis-secret' } });
  assert.match(text({ redisOptions: { secretKey } }), /redisOptions: set only with "redis"/);
});

test('auth.sources: kinds of entries in one list, each checked by its type, paths resolved, secrets masked', () => {
  const text = (sources: unknown[]) => problemsOf(configFile({ auth: { sources } })).join('\n');
  const ldap = { type: 'ldap', url: 'ldaps://ldap.example.org', userBase: 'ou=people,dc=example,dc=org' };
  assert.match(text([{ type: 'kerberos' }]), /auth\.sources\[0\]\.type: must be one of "htpasswd", "ldap", "oidc", "tokens", got "kerberos"/);
  assert.match(text([{ type: 'ldap', url: 'ldaps://x' }]), /auth\.sources\[0\]: missing "userBase" \(a "ldap" source needs them\)/);
  assert.match(text([{ ...ldap, bindDN: 'x' }]), /auth\.sources\[0\]\.bindDN: unknown key \(known keys in auth\.sources\[0\]: name, url, startTls/);
  assert.match(text([{ ...ldap, url: 'ldap://ldap.example.org' }]), /auth\.sources\[0\]\.url: ldap:\/\/ without startTls sends passwords in clear/);
  assert.match(text([{ ...ldap, url: 'http://x' }]), /scheme must be ldaps: or ldap:/);
  assert.match(text([{ ...ldap, userFilter: '(uid=alice)' }]), /userFilter: must contain \{username\}/);
  assert.match(text([{ ...ldap, bindDn: 'cn=x' }]), /bindPasswordFile: bindDn needs a password/);
  assert.match(text([ldap, ldap]), /auth\.sources\[1\]\.name: "ldap" is also auth\.sources\[0\]'s name/);
  assert.match(text([{ ...ldap, nestedGroupsInChain: true }]), /auth\.sources\[0\]\.nestedGroupsInChain: needs groupBase/);
  assert.match(text([{ ...ldap, groupBase: 'dc=x', nestedGroupsInChain: true, nestedGroupsDepth: 2 }]), /auth\.sources\[0\]\.nestedGroupsDepth: with nestedGroupsInChain the directory follows nesting itself/);
  assert.match(text([{ type: 'tokens' }]), /auth\.sources\[0\]: access tokens act for their owners, who come from another source/);
  assert.match(text([{ type: 'htpasswd', file: 'x' }, { type: 'tokens' }, { type: 'tokens', name: 'more' }]), /auth\.sources\[2\]: access tokens are already auth\.sources\[1\]; list "tokens" once/);
  assert.match(text([{ type: 'htpasswd', file: 'x' }, { type: 'tokens', maxDays: 0 }]), /auth\.sources\[1\]\.maxDays/);
  assert.equal(loadConfig(configFile({ auth: { sources: [{ type: 'htpasswd', file: 'x' }, { type: 'tokens', maxDays: 90, adminGroup: 'admins' }] } }), {}).config.auth.sources[1]?.type, 'tokens');
  assert.match(text([{ ...ldap, nestedGroupsDepth: 11 }]), /nestedGroupsDepth: must be between 0 and 10/);
  const { config } = loadConfig(configFile({ auth: { sources: [{ type: 'htpasswd', file: './users' }, { ...ldap, url: 'ldap://x', startTls: true, caFile: 'ca.pem', name: 'corp' }] } }), {});
  assert.ok(isAbsolute((config.auth.sources[0] as { file: string }).file));
  assert.ok(isAbsolute((config.auth.sources[1] as { caFile: string }).caFile));
  const fromEnv = loadConfig(configFile({}), { REGGATE_AUTH_SOURCES: JSON.stringify([{ ...ldap, bindDn: 'cn=svc', bindPassword: 'env-secret' }]) }).config;
  assert.equal((fromEnv.auth.sources[0] as { bindPassword: string }).bindPassword, 'env-secret');
  const check = spawnSync(process.execPath, ['dist/cli/main.js', 'config', 'check', '--config', configFile({ auth: { sources: [{ ...ldap, bindDn: 'cn=svc', bindPassword: 'never-printed-pw' }] } })], { encoding: 'utf8' });
  assert.equal(check.status, 0, check.stderr);
  assert.doesNotMatch(check.stdout, /never-printed-pw/);
  assert.match(check.stdout, /"bindPassword": "\*\*\*\*\*\*\*\*"/);
});

test('oidc sources: what is wrong is named key by key', () => {
  const problems = problemsOf(
    configFile({
      auth: {
        mode: 'private',
        sources: [
          { type: 'oidc', name: 'github', issuer: 'http://token.actions.githubusercontent.com', audience: [''], subject: 'ci', groups: ['${a b}'], require: { ref: [] } },
          { type: 'htpasswd', file: './htpasswd' },
        ],
      },
      access: [{ who: ['oidc:gitlab'], repositories: ['${claims.repository}'], actions: ['pull'] }],
    }),
  );
  assert.deepEqual(problems, [
    'auth.sources[0].require: "ref": an empty list matches nothing; give at least one value',
  ]);
  const next = problemsOf(
    configFile({
      auth: {
        mode: 'private',
        sources: [
          { type: 'oidc', name: 'github', issuer: 'http://token.actions.githubusercontent.com', audience: [''], subject: 'ci', groups: ['${a b}'] },
          { type: 'htpasswd', file: './htpasswd' },
        ],
      },
      access: [{ who: ['oidc:gitlab'], repositories: ['${claims.repository}'], actions: ['pull'] }],
    }),
  );
  for (const expected of [
    'auth.sources[0].issuer: "http://token.actions.githubusercontent.com" must be https:// (keys fetched in clear could be replaced on the way)',
    'auth.sources[0].audience[0]: empty; give the audience your CI jobs ask for, e.g. your registry\'s URL',
    'auth.sources[0].subject: "ci" names no claim, so every job would be one identity; use e.g. "${repository}" or "${sub}"',
    'auth.sources[0].groups[0]: "${a b}" "${a b}" is not a claim name',
    'access[0].who[0]: "oidc:gitlab" names no oidc source; add { "type": "oidc", "name": "gitlab", … } to auth.sources or correct the name',
  ]) {
    assert.ok(next.includes(expected), `${expected}\n in\n${next.join('\n')}`);
  }
});
