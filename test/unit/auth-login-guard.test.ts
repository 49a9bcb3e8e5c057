import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LoginGuard, type LoginLimitsConfig } from '../../src/auth/login-guard.js';
import { VerifyBusyError } from '../../src/auth/verify-pool.js';

const LIMITS: LoginLimitsConfig = { enabled: true, failuresPerUser: 3, failuresPerClient: 8, windowSeconds: 60, maxBackoffSeconds: 30, checksPerSecondPerUser: 1 };

/** A user table that counts the real password checks (what a guessing loop wants). */
function table(passwords: Record<string, string>) {
  const checks = { count: 0 };
  const verified = new Set<string>();
  const checker = {
    verify: async (user: string, password: string) => {
      checks.count++;
      const ok = passwords[user] === password;
      if (ok) verified.add(`${user}:${password}`);
      return ok;
    },
    stamp: (user: string) => (user in passwords ? `s-${passwords[user]}` : null),
    remembered: (user: string, password: string) => verified.has(`${user}:${password}`),
  };
  return { checks, checker };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('per user and client: a few failures, then a growing back-off with Retry-After; a success opens it again', async () => {
  const { checks, checker } = table({ alice: 'right' });
  const guard = new LoginGuard(LIMITS, checker);
  for (let i = 0; i < LIMITS.failuresPerUser; i++) assert.deepEqual(await guard.login('alice', `guess-${i}`, '198.51.100.7'), { ok: false, reason: 'invalid' });
  const first = await guard.login('alice', 'guess-x', '198.51.100.7');
  assert.equal(first.ok, false);
  assert.ok(!first.ok && first.reason === 'limited' && first.retryAfterSeconds === 1, JSON.stringify(first));
  assert.match(!first.ok && first.reason === 'limited' ? first.message : '', /^too many failed logins for user "alice" or from 198\.51\.100\.7; retry in 1 s$/);
  assert.equal(checks.count, LIMITS.failuresPerUser, 'a closed pair costs no bcrypt check');

  // Another address is not locked out, even for the same user.
  assert.deepEqual(await guard.login('alice', 'right', '203.0.113.9'), { ok: true });

  await sleep(1100);
  assert.deepEqual(await guard.login('alice', 'guess-y', '198.51.100.7'), { ok: false, reason: 'invalid' });
  const second = await guard.login('alice', 'guess-z', '198.51.100.7');
  assert.ok(!second.ok && second.reason === 'limited' && second.retryAfterSeconds === 2, JSON.stringify(second));

  await sleep(2100);
  assert.deepEqual(await guard.login('alice', 'right', '198.51.100.7'), { ok: true }, 'the right password after the back-off');
  // alice has had failures from somewhere: her checks stay paced at one a second (not reset by a success).
  await sleep(1100);
  assert.deepEqual(await guard.login('alice', 'wrong-again', '198.51.100.7'), { ok: false, reason: 'invalid' }, 'the success reset the pair');
});

test('a pair verified a moment ago passes without counters, even from an address that guessing closed', async () => {
  const { checks, checker } = table({ frank: 'right' });
  const guard = new LoginGuard(LIMITS, checker);
  assert.deepEqual(await guard.login('frank', 'right', '198.51.100.20'), { ok: true });
  for (let i = 0; i < LIMITS.failuresPerUser + 1; i++) await guard.login('frank', `guess-${i}`, '198.51.100.20');
  const before = checks.count;
  assert.deepEqual(await guard.login('frank', 'right', '198.51.100.20'), { ok: true }, 'the session that knows the password goes on');
  assert.equal(checks.count, before);
  const guessing = await guard.login('frank', 'guess-more', '198.51.100.20');
  assert.ok(!guessing.ok && guessing.reason === 'limited');
});

test('the same wrong password again (containerd: POST, then GET) counts once and costs no second bcrypt run', async () => {
  const { checks, checker } = table({ bob: 'right' });
  const guard = new LoginGuard(LIMITS, checker);
  for (let i = 0; i < 10; i++) assert.deepEqual(await guard.login('bob', 'stale-password', '198.51.100.8'), { ok: false, reason: 'invalid' });
  assert.equal(checks.count, 1);
  assert.deepEqual(await guard.login('bob', 'right', '198.51.100.8'), { ok: true });
});

test('per client: spraying many names from one address closes the address', async () => {
  const { checker } = table({});
  const guard = new LoginGuard(LIMITS, checker);
  for (let i = 0; i < LIMITS.failuresPerClient; i++) await guard.login(`user-${i}`, 'x', '198.51.100.9');
  const next = await guard.login('someone-new', 'x', '198.51.100.9');
  assert.ok(!next.ok && next.reason === 'limited', JSON.stringify(next));
  assert.deepEqual(await guard.login('someone-new', 'x', '203.0.113.10'), { ok: false, reason: 'invalid' }, 'other addresses are not affected');
});

test('per user from anywhere: after a few failures, real checks for that user are paced, nobody is locked out', async () => {
  const { checks, checker } = table({ carol: 'right' });
  const guard = new LoginGuard(LIMITS, checker);
  // Guessing from many addresses, each staying under the per-pair threshold.
  for (let i = 0; i < LIMITS.failuresPerUser; i++) await guard.login('carol', `g${i}`, `10.0.0.${i}`);
  const before = checks.count;
  const burst = await Promise.all(Array.from({ length: 20 }, (_, i) => guard.login('carol', `h${i}`, `10.0.1.${i}`)));
  assert.ok(checks.count - before <= LIMITS.checksPerSecondPerUser, `${checks.count - before} real checks in a burst`);
  assert.ok(burst.filter((o) => !o.ok && o.reason === 'limited').length >= 19);
  await sleep(1100);
  assert.deepEqual(await guard.login('carol', 'right', '203.0.113.11'), { ok: true }, 'the user still gets in, at the pace');
});

test('a saturated bcrypt pool is a retry-shortly 429, never a failed login', async () => {
  const guard = new LoginGuard(LIMITS, { verify: () => Promise.reject(new VerifyBusyError()), stamp: () => null, remembered: () => false });
  assert.deepEqual(await guard.login('dave', 'x', '198.51.100.12'), { ok: false, reason: 'limited', retryAfterSeconds: 1, message: 'too many password checks at once, retry shortly' });
});

test('disabled: every check is a plain password check', async () => {
  const { checks, checker } = table({});
  const guard = new LoginGuard({ ...LIMITS, enabled: false }, checker);
  for (let i = 0; i < 10; i++) assert.deepEqual(await guard.login('eve', 'same', '198.51.100.13'), { ok: false, reason: 'invalid' });
  assert.equal(checks.count, 10);
});
