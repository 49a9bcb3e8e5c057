/**
 * The gate called directly, no HTTP (distribution's TestAccessController): identity sources in
 * order, groups from a source deciding a rule, an outage that stops the chain, tokens re-checked
 * by the source that issued them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { AuthGate } from '../../src/auth/gate.js';
import { Identifier } from '../../src/auth/identify.js';
import { TokenAuthority } from '../../src/auth/token.js';
import { AccessPolicy } from '../../src/access/policy.js';
import { AccessRules } from '../../src/access/rules.js';
import { defaultConfig } from '../../src/config/defaults.js';
import { keyIdOf } from '../../src/state/signing-key.js';
import { classifyRequest } from '../../src/registry/route.js';
import { registryParams } from '../../src/registry/inputs.js';
import type { Authentication } from '../../src/auth/sources/source.js';
import { tableSource } from '../harness/identity.js';

const SERVICE = { realm: 'https://registry.test/token', service: 'registry.test' };
const basic = (user: string, password: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` });

function gateWith(directoryDown: () => boolean) {
  const config = defaultConfig();
  const htpasswd = tableSource({ robot: 'robot-pw', alice: 'htpasswd-alice' });
  const outage: Authentication = { ok: false, reason: 'unavailable', message: 'identity source "ldap" (the directory) cannot answer now; try again in a moment' };
  const directory = tableSource({ alice: 'directory-alice', dora: 'dora-pw' }, { name: 'ldap', groups: { dora: ['team-a'] } });
  const ldap = { ...directory.source, authenticate: (u: string, p: string, c: string) => (directoryDown() ? Promise.resolve(outage) : directory.source.authenticate(u, p, c)), currentStamp: () => undefined };
  const identifier = new Identifier([htpasswd.source, ldap], config.loginLimits);
  const policy = new AccessPolicy(
    new AccessRules([
      { who: ['group:team-a'], repositories: ['team-a/**'], actions: ['pull', 'push'] },
      { who: ['authenticated'], repositories: ['${user}/**'], actions: ['pull', 'push'] },
    ]),
    { groupsOf: () => new Set<string>() },
    false,
  );
  const secret = randomBytes(32);
  const authority = new TokenAuthority({ id: keyIdOf(secret), secret }, { ttlSeconds: 300, issuer: 'registry-gate' });
  const gate = new AuthGate({ ...config.auth, mode: 'private' }, identifier, authority, policy);
  return { gate, authority, directory };
}

const put = (repository: string) => classifyRequest('PUT', `/v2/${repository}/manifests/t`, registryParams(''));

test('sources in order, groups from the directory, an outage that stops the chain', async () => {
  let down = false;
  const { gate } = gateWith(() => down);
  const rows: [string, Record<string, string>, string, boolean, string | undefined][] = [
    // who                       credentials                               repository    down   code
    ['robot (htpasswd)', basic('robot', 'robot-pw'), 'robot/x', false, undefined],
    ['dora (directory, team-a)', basic('dora', 'dora-pw'), 'team-a/app', false, undefined],
    ['dora elsewhere', basic('dora', 'dora-pw'), 'team-b/app', false, 'DENIED'],
    ['alice: htpasswd holds the name', basic('alice', 'htpasswd-alice'), 'alice/x', false, undefined],
    ['alice with the directory password', basic('alice', 'directory-alice'), 'alice/x', false, 'UNAUTHORIZED'],
    ['nobody', basic('nobody', 'x'), 'nobody/x', false, 'UNAUTHORIZED'],
    ['robot while the directory is down', basic('robot', 'robot-pw'), 'robot/x', true, undefined],
    ['dora while it is down (not remembered: another password)', basic('dora', 'dora-other'), 'dora/x', true, 'SOURCE_UNAVAILABLE'],
    ['a name no source holds while it is down', basic('mallory', 'x'), 'mallory/x', true, 'SOURCE_UNAVAILABLE'],
  ];
  for (const [who, headers, repository, isDown, code] of rows) {
    down = isDown;
    const verdict = await gate.check(put(repository), headers, SERVICE, '192.0.2.7');
    assert.equal(verdict.ok ? undefined : verdict.code, code, who);
  }
});

test('a token names its source: the directory\'s is not re-checked, htpasswd\'s is; groups in the token decide', async () => {
  const { gate, authority } = gateWith(() => true);
  const access = [{ type: 'repository', name: 'team-a/app', actions: ['pull', 'push'] }];
  const token = (subject: string, source: string, groups: string[], stamp?: string) => ({
    authorization: `Bearer ${authority.issue({ subject, service: SERVICE.service, access, source, groups, ...(stamp ? { stamp } : {}) }).token}`,
  });
  assert.equal((await gate.check(put('team-a/app'), token('dora', 'ldap', ['team-a']), SERVICE, '192.0.2.7')).ok, true, 'the directory is down; its token lives its lifetime');
  const noGroup = await gate.check(put('team-a/app'), token('dora', 'ldap', []), SERVICE, '192.0.2.7');
  assert.equal(noGroup.ok ? 'ok' : noGroup.code, 'DENIED', 'the rules are asked with the token\'s groups');
  const stale = await gate.check(put('team-a/app'), token('robot', 'htpasswd', ['team-a'], 'stamp-of-old'), SERVICE, '192.0.2.7');
  assert.ok(!stale.ok && /password of "robot" changed/.test(stale.message));
  const gone = await gate.check(put('team-a/app'), token('dora', 'retired-source', ['team-a']), SERVICE, '192.0.2.7');
  assert.ok(!gone.ok && /identity source "retired-source" is no longer configured/.test(gone.message), 'a source no longer configured vouches for nobody');
});
