/** The keys that name files come from the schema's marks: every one is found, resolved and checked. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { configSchema } from '../../src/config/schema.js';
import { namedFiles, resolveFileKeys } from '../../src/config/file-keys.js';
import { defaultConfig } from '../../src/config/defaults.js';
import { checkNamedFiles } from '../../src/files/named-files.js';
import type { Config } from '../../src/config/types.js';

function withSources(dir: string): Config {
  const base = defaultConfig();
  return {
    ...base,
    stateDir: path.join(dir, 'state'),
    redis: 'redis://127.0.0.1:6379',
    redisOptions: { ...base.redisOptions, secretKeyFile: 'secret.key' },
    groupsFile: 'groups',
    auth: {
      ...base.auth,
      mode: 'private',
      sources: [
        { type: 'tokens' },
        { type: 'htpasswd', file: 'users' },
        { type: 'ldap', url: 'ldaps://x', userBase: 'dc=x', caFile: 'ldap-ca.pem', bindDn: 'cn=s', bindPasswordFile: '/etc/bind.secret' },
      ],
    },
  };
}

test('every file key is found where it is, sources and nested sections included', () => {
  const keys = namedFiles(withSources('/srv'), configSchema).map((f) => `${f.key}=${f.path}`);
  assert.deepEqual(keys.sort(), [
    'auth.htpasswdFile=./auth/htpasswd',
    'auth.sources[1].file=users',
    'auth.sources[2].bindPasswordFile=/etc/bind.secret',
    'auth.sources[2].caFile=ldap-ca.pem',
    'groupsFile=groups',
    'redisOptions.secretKeyFile=secret.key',
    'stateDir=/srv/state',
  ]);
  const resolved = resolveFileKeys(withSources('/srv'), configSchema, '/etc/registry-gate');
  assert.equal((resolved.auth.sources[2] as { caFile: string }).caFile, '/etc/registry-gate/ldap-ca.pem');
  assert.equal((resolved.auth.sources[2] as { bindPasswordFile: string }).bindPasswordFile, '/etc/bind.secret');
  assert.equal(resolved.groupsFile, '/etc/registry-gate/groups');
  assert.equal(resolved.auth.sources[0]!.type, 'tokens', 'entries without file keys are kept as they are');
});

test('config check names each unusable file of a source by its key; unused keys are not checked', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'rg-files-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(path.join(dir, 'users'), '');
  const config = resolveFileKeys(withSources(dir), configSchema, dir);
  const findings = (await checkNamedFiles(config, { selfCommand: 'registry-gate' })).map((f) => `${f.severity}: ${f.message}`);
  assert.deepEqual(findings, [
    `error: auth.sources[2].caFile: ${dir}/ldap-ca.pem does not exist; point auth.sources[2].caFile at the directory's CA certificate (PEM)`,
    `error: auth.sources[2].bindPasswordFile: /etc/bind.secret does not exist; point auth.sources[2].bindPasswordFile at a file holding the service account's password`,
    `error: redisOptions.secretKeyFile: ${dir}/secret.key does not exist; point redisOptions.secretKeyFile at a file holding the secret key (openssl rand -base64 32)`,
    `warning: groupsFile: ${dir}/groups does not exist; only the groups in "groups" apply until it is created`,
  ]);
  const shorthand = { ...config, auth: { ...config.auth, sources: [] }, redis: null };
  const alone = (await checkNamedFiles(shorthand, { selfCommand: 'rg' })).map((f) => f.message);
  assert.ok(alone.includes(`auth.htpasswdFile: ${config.auth.htpasswdFile} does not exist, so nobody can log in; add a user with: rg passwd add USER --file ${config.auth.htpasswdFile}`), alone.join('\n'));
  assert.ok(!alone.some((m) => m.startsWith('redisOptions')), 'without redis its files are not used, nor checked');
});
