import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { LoginLimitsConfig } from '../../src/auth/login-guard.js';
import { Identifier } from '../../src/auth/identify.js';
import type { Authentication, IdentitySource } from '../../src/auth/sources/source.js';
import { VerifyBusyError } from '../../src/auth/verify-pool.js';
import { tableSource } from '../harness/identity.js';

const LIMITS: LoginLimitsConfig = { enabled: true, failuresPerUser: 3, failuresPerClient: 8, windowSeconds: 60, maxBackoffSeconds: 30, checksPerSecondPerUser: 1 };

function table(passwords: Record<string, string>, name = 'table', answer?: () => Promise<Authentication>) {
  const { source, checks } = tableSource(passwords, { name, ...(answer ? { answer } : {}) });
  return { checks, checker: source };
}

const INVALID = { ok: false, reason: 'invalid', message: 'invalid username or password' };
/** The limits as every login meets them: the identify chain around the source. */
const chain = (limits: LoginLimitsConfig, ...sources: IdentitySource[]) => new Identifier(sources, limits);
const ok = async (outcome: Promise<{ ok: boolean }>, message?: string) => assert.equal((await outcome).ok, true, message);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('per user and client: a few failures, then a growing back-off with Retry-After; a success opens it again', async () => {
  const { checks, checker } = table({ alice: 'right' });
  const guard = chain(LIMITS, checker);
  for (let i = 0; i < LIMITS.failuresPerUser; i++) assert.deepEqual(await guard.login('alice', `guess-${i}`, '198.51.100.7'), INVALID);
  const first = await guard.login('alice', 'guess-x', '198.51.100.7');
  assert.equal(first.ok, false);
  assert.ok(!first.ok && first.reason === 'limited' && first.retryAfterSeconds === 1, JSON.stringify(first));
  assert.match(!first.ok && first.reason === 'limited' ? first.message : '', /^too many failed logins for user "alice" or from 198\.51\.100\.7; retry in 1 s$/);
  assert.equal(checks.count, LIMITS.failuresPerUser, 'a closed pair costs no bcrypt check');

  // Another address is not locked out, even for the same user.
  await ok(guard.login('alice', 'right', '203.0.113.9'));

  await sleep(1100);
  assert.deepEqual(await guard.login('alice', 'guess-y', '198.51.100.7'), INVALID);
  const second = await guard.login('alice', 'guess-z', '198.51.100.7');
  assert.ok(!second.ok && second.reason === 'limited' && second.retryAfterSeconds === 2, JSON.stringify(second));

  await sleep(2100);
  await ok(guard.login('alice', 'right', '198.51.100.7'), 'the right password after the back-off');
  // alice has had failures from somewhere: her checks stay paced at one a second (not reset by a success).
  await sleep(1100);
  assert.deepEqual(await guard.login('alice', 'wrong-again', '198.51.100.7'), INVALID, 'the success reset the pair');
});

test('a pair verified a moment ago passes without counters, even from an address that guessing closed', async () => {
  const { checks, checker } = table({ frank: 'right' });
  const guard = chain(LIMITS, checker);
  await ok(guard.login('frank', 'right', '198.51.100.20'));
  for (let i = 0; i < LIMITS.failuresPerUser + 1; i++) await guard.login('frank', `guess-${i}`, '198.51.100.20');
  const before = checks.count;
  await ok(guard.login('frank', 'right', '198.51.100.20'), 'the session that knows the password goes on');
  assert.equal(checks.count, before);
  const guessing = await guard.login('frank', 'guess-more', '198.51.100.20');
  assert.ok(!guessing.ok && guessing.reason === 'limited');
});

test('the same wrong password again (containerd: POST, then GET) counts once and costs no second check; replayed further, it counts again', async () => {
  const { checks, checker } = table({ bob: 'right' });
  const guard = chain(LIMITS, checker);
  assert.deepEqual(await guard.login('bob', 'stale-password', '198.51.100.8'), INVALID);
  assert.deepEqual(await guard.login('bob', 'stale-password', '198.51.100.8'), INVALID, 'the GET after the POST: free');
  await ok(guard.login('bob', 'right', '203.0.113.8'), 'one failure so far: nothing is closed');
  const replayed = [];
  for (let i = 0; i < 10; i++) replayed.push(await guard.login('bob', 'stale-password', '198.51.100.8'));
  assert.equal(checks.count, 2, 'one check for the wrong password, one for the right one');
  assert.deepEqual(replayed.slice(0, LIMITS.failuresPerUser - 1).map((o) => o.ok || o.reason), Array(LIMITS.failuresPerUser - 1).fill('invalid'));
  assert.ok(replayed.slice(LIMITS.failuresPerUser - 1).every((o) => !o.ok && o.reason === 'limited'), JSON.stringify(replayed.map((o) => o.ok || o.reason)));
});

test('per client: spraying many names from one address closes the address', async () => {
  const { checker } = table({});
  const guard = chain(LIMITS, checker);
  for (let i = 0; i < LIMITS.failuresPerClient; i++) await guard.login(`user-${i}`, 'x', '198.51.100.9');
  const next = await guard.login('someone-new', 'x', '198.51.100.9');
  assert.ok(!next.ok && next.reason === 'limited', JSON.stringify(next));
  assert.deepEqual(await guard.login('someone-new', 'x', '203.0.113.10'), INVALID, 'other addresses are not affected');
});

test('per user from anywhere: after a few failures, real checks for that user are paced, nobody is locked out', async () => {
  const { checks, checker } = table({ carol: 'right' });
  const guard = chain(LIMITS, checker);
  // Guessing from many addresses, each staying under the per-pair threshold.
  for (let i = 0; i < LIMITS.failuresPerUser; i++) await guard.login('carol', `g${i}`, `10.0.0.${i}`);
  const before = checks.count;
  const burst = await Promise.all(Array.from({ length: 20 }, (_, i) => guard.login('carol', `h${i}`, `10.0.1.${i}`)));
  assert.ok(checks.count - before <= LIMITS.checksPerSecondPerUser, `${checks.count - before} real checks in a burst`);
  assert.ok(burst.filter((o) => !o.ok && o.reason === 'limited').length >= 19);
  await sleep(1100);
  await ok(guard.login('carol', 'right', '203.0.113.11'), 'the user still gets in, at the pace');
});

test('a saturated bcrypt pool is a retry-shortly 429, never a failed login', async () => {
  const guard = chain(LIMITS, table({}, 'busy', () => Promise.reject(new VerifyBusyError())).checker);
  assert.deepEqual(await guard.login('dave', 'x', '198.51.100.12'), { ok: false, reason: 'limited', retryAfterSeconds: 1, message: 'too many password checks at once, retry shortly' });
});

test('disabled: every check is a plain password check', async () => {
  const { checks, checker } = table({});
  const guard = chain({ ...LIMITS, enabled: false }, checker);
  for (let i = 0; i < 10; i++) assert.deepEqual(await guard.login('eve', 'same', '198.51.100.13'), INVALID);
  assert.equal(checks.count, 10);
});

test('the chain: the first source that knows the name decides; a wrong password there is final; a name nobody knows is invalid', async () => {
  const first = table({ alice: 'one' }, 'first');
  const second = table({ alice: 'two', bob: 'bob-pw' }, 'second');
  const guard = chain(LIMITS, first.checker, second.checker);
  const alice = await guard.login('alice', 'one', '198.51.100.30');
  assert.ok(alice.ok && alice.identity.source === 'first');
  assert.deepEqual(await guard.login('alice', 'two', '198.51.100.30'), INVALID, 'the second source may not accept a name the first holds');
  const bob = await guard.login('bob', 'bob-pw', '198.51.100.30');
  assert.ok(bob.ok && bob.identity.source === 'second', 'unknown to the first: the second is asked');
  assert.deepEqual(await guard.login('nobody', 'x', '198.51.100.30'), INVALID);
});

test('a source that cannot answer: 503-shaped, counted for nobody, never a fall-through; logins work again when it returns', async () => {
  let down = true;
  const directory = table({ carol: 'right' }, 'directory');
  const outage: IdentitySource = {
    ...directory.checker,
    authenticate: (user, password, client) => (down ? Promise.resolve({ ok: false, reason: 'unavailable', message: 'the directory ldap://x cannot be reached' }) : directory.checker.authenticate(user, password, client)),
  };
  const fallback = table({ carol: 'fallback' }, 'fallback');
  const guard = chain(LIMITS, outage, fallback.checker);
  for (let i = 0; i < LIMITS.failuresPerUser * 3; i++) {
    assert.deepEqual(await guard.login('carol', 'fallback', '198.51.100.31'), { ok: false, reason: 'unavailable', message: 'the directory ldap://x cannot be reached' });
  }
  assert.equal(fallback.checks.count, 0, 'no other source was asked');
  down = false;
  await ok(guard.login('carol', 'right', '198.51.100.31'), 'nobody was locked out by the outage');
});

test('identical concurrent checks are merged before the limits: a right password is never paced against itself while someone guesses', async () => {
  const { checks, checker } = table({ dana: 'right' });
  const guard = chain(LIMITS, checker);
  for (let i = 0; i < LIMITS.failuresPerUser + 2; i++) await guard.login('dana', `guess-${i}`, '198.51.100.40');
  await sleep(1100);
  const before = checks.count;
  const four = await Promise.all(Array.from({ length: 4 }, () => guard.login('dana', 'right', '203.0.113.41')));
  assert.deepEqual(four.map((o) => o.ok), [true, true, true, true], JSON.stringify(four));
  assert.equal(checks.count - before, 1, 'one check for four requests');
});
