/**
 * The directory source against a real slapd (Debian's) on loopback: ldaps:// and StartTLS with a
 * test CA, search then bind, nested groups, hostile names and passwords, and the directory
 * stopped and started again. The source is called directly; the identify chain, the gate and real
 * clients on top are in ldap-clients.test.ts.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { LdapSource, escapeFilterValue, type LdapConfig } from '../../src/auth/sources/ldap.js';
import { createLogger } from '../../src/observe/logger.js';
import { directorySource, startSlapd, type Slapd } from '../harness/slapd.js';

const people: Record<string, string> = { alice: 'alice-directory-pw', bob: 'bob-directory-pw', 'star*': 'star-pw' };
for (let i = 0; i < 300; i++) people[`user${i}`] = `password-${i}`;

describe('the directory source against slapd', () => {
  let slapd: Slapd;
  let config: LdapConfig;
  before(async () => {
    slapd = await startSlapd({
      people,
      groups: { 'team-a': ['alice'], developers: ['group:team-a', 'bob'], staff: ['group:developers'], deep: ['group:staff'], 'team-b': ['bob'] },
    });
    config = directorySource(slapd, { nestedGroupsDepth: 2 });
  });
  const made: LdapSource[] = [];
  after(async () => {
    await Promise.all(made.map((s) => s.close()));
    await slapd?.stop();
  });

  const source = (over: Partial<LdapConfig> = {}) => {
    made.push(new LdapSource({ ...config, ...over }, createLogger('silent')));
    return made.at(-1)!;
  };

  test('ldaps: search then bind; groups with nesting to the configured depth', async () => {
    const alice = await source().authenticate('alice', people.alice!);
    assert.ok(alice.ok, JSON.stringify(alice));
    assert.deepEqual(
      alice.identity,
      { subject: 'alice', source: 'ldap', groups: ['developers', 'staff', 'team-a'], stamp: null, entry: 'uid=alice,ou=people,dc=example,dc=org' },
      'deep is three levels up: beyond nestedGroupsDepth 2',
    );
    const deeper = await source({ nestedGroupsDepth: 3 }).authenticate('alice', people.alice!);
    assert.ok(deeper.ok && deeper.identity.groups.includes('deep'));
    const flat = await source({ nestedGroupsDepth: 0 }).authenticate('alice', people.alice!);
    assert.ok(flat.ok && flat.identity.groups.join() === 'team-a');
    const user299 = await source().authenticate('user299', 'password-299');
    assert.ok(user299.ok && user299.identity.groups.length === 0);
  });

  test('StartTLS on ldap:// with the CA file', async () => {
    const bob = await source({ url: slapd.ldapUrl, startTls: true }).authenticate('bob', people.bob!);
    assert.ok(bob.ok, JSON.stringify(bob));
    assert.deepEqual(bob.identity.groups, ['deep', 'developers', 'staff', 'team-b'], 'bob is one level closer to deep than alice');
  });

  test('a wrong password is invalid, a name the directory lacks is unknown (the next source may know it)', async () => {
    assert.deepEqual(await source().authenticate('alice', 'guess'), { ok: false, reason: 'invalid', message: 'invalid username or password' });
    assert.deepEqual(await source().authenticate('carol', 'whatever'), { ok: false, reason: 'unknown', message: 'invalid username or password' });
  });

  test('hostile names and passwords never log anyone in and reach the directory only escaped', async () => {
    const before = slapd.binds();
    for (const password of ['', ' ', '\t\n']) {
      assert.deepEqual(await source().authenticate('alice', password), { ok: false, reason: 'invalid', message: 'invalid username or password' }, JSON.stringify(password));
    }
    assert.equal(slapd.binds(), before, 'an empty password (an anonymous bind to LDAP) never reaches the directory');
    for (const user of ['*', 'a*', ')(uid=*', '*)(|(uid=*', 'alice)(uid=*', 'alice\0', '\\2a', 'x'.repeat(10_000)]) {
      const answer = await source().authenticate(user, people.alice!);
      assert.equal(answer.ok, false, JSON.stringify(user.slice(0, 40)));
    }
    // The name with a star in it is found as itself, not as a pattern.
    const star = await source().authenticate('star*', 'star-pw');
    assert.ok(star.ok && star.identity.subject === 'star*');
    assert.equal(escapeFilterValue('a*(b)\\\0'), 'a\\2a\\28b\\29\\5c\\00');
  });

  test('a few connections serve many logins: 40 logins, 8 at a time, over at most poolSize connections', async () => {
    const ldap = source({ poolSize: 3 });
    const before = slapd.connections();
    const users = Array.from({ length: 40 }, (_, i) => `user${i}`);
    for (let i = 0; i < users.length; i += 8) {
      const answers = await Promise.all(users.slice(i, i + 8).map((u) => ldap.authenticate(u, people[u]!)));
      assert.ok(answers.every((a) => a.ok), JSON.stringify(answers.find((a) => !a.ok)));
    }
    const wrong = await ldap.authenticate('user1', 'not-it');
    assert.ok(!wrong.ok && wrong.reason === 'invalid', 'a wrong password on a pooled connection is still wrong');
    assert.ok((await ldap.authenticate('user2', people.user2!)).ok, 'and the connection serves the next login');
    const opened = slapd.connections() - before;
    assert.ok(opened <= 3, `${opened} connections for 42 logins`);
  });

  test('the directory stopped: unavailable, reported as degraded; back: logins work again within seconds', async () => {
    const ldap = source();
    assert.ok((await ldap.authenticate('alice', people.alice!)).ok);
    await slapd.kill();
    const down = await ldap.authenticate('alice', people.alice!);
    assert.equal(down.ok, false);
    assert.ok(!down.ok && down.reason === 'unavailable', JSON.stringify(down));
    assert.ok(!down.ok && !down.message.includes('127.0.0.1'), 'the caller is not told the directory\'s address');
    assert.match(ldap.degraded().join(), /identity source "ldap": the directory ldaps:\/\/127\.0\.0\.1:\d+ does not answer/);
    await slapd.start();
    const started = Date.now();
    let back = await ldap.authenticate('alice', people.alice!);
    while (!back.ok && Date.now() - started < 10_000) back = await ldap.authenticate('alice', people.alice!);
    assert.ok(back.ok, JSON.stringify(back));
    assert.deepEqual(ldap.degraded(), []);
  });
});
