import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Alarm, expiryMargin, renewalTime, retryDelay } from '../../src/tls/timing.js';

const DAY = 24 * 60 * 60 * 1000;
const start = new Date('2030-01-01T00:00:00Z');
const days = (n: number): Date => new Date(start.getTime() + n * DAY);

describe('renewalTime', () => {
  it('renews a 90-day certificate after 60 days, 30 days before expiry', () => {
    assert.deepEqual(renewalTime({ notBefore: start, notAfter: days(90) }, 30, () => 0), days(60));
  });

  it('never renews earlier than renewBeforeDays ahead of expiry', () => {
    assert.deepEqual(renewalTime({ notBefore: start, notAfter: days(90) }, 10, () => 0), days(80));
  });

  it('scales to short-lived certificates', () => {
    const notAfter = new Date(start.getTime() + 60_000);
    assert.deepEqual(renewalTime({ notBefore: start, notAfter }, 30, () => 0), new Date(start.getTime() + 40_000));
  });

  it('adds at most a tenth of the remaining time as jitter, never reaching expiry', () => {
    const latest = renewalTime({ notBefore: start, notAfter: days(90) }, 30, () => 0.999999);
    assert.ok(latest < days(63) && latest > new Date(days(63).getTime() - 1_000));
    const notAfter = days(90);
    for (let i = 0; i < 100; i++) assert.ok(renewalTime({ notBefore: start, notAfter }, 1, Math.random) < notAfter);
  });
});

describe('retryDelay', () => {
  it('doubles from the minimum and stops at the maximum', () => {
    const backoff = { minMs: 5_000, maxMs: 3_600_000 };
    assert.deepEqual([0, 1, 2, 3].map((n) => retryDelay(n, backoff)), [5_000, 10_000, 20_000, 40_000]);
    assert.equal(retryDelay(10, backoff), 3_600_000);
    assert.equal(retryDelay(10_000, backoff), 3_600_000);
  });
});

describe('expiryMargin', () => {
  it('is 7 days for long certificates and a sixth of the lifetime for short ones', () => {
    assert.equal(expiryMargin({ notBefore: start, notAfter: days(90) }), 7 * DAY);
    assert.equal(expiryMargin({ notBefore: start, notAfter: days(6) }), DAY);
  });
});

describe('Alarm', () => {
  // Alarms are unref'ed (they must not keep a server alive); something has to hold the loop open here.
  let keepAlive: NodeJS.Timeout;
  before(() => (keepAlive = setInterval(() => undefined, 1_000)));
  after(() => clearInterval(keepAlive));

  it('fires at the instant, and clear() cancels', async () => {
    const alarm = new Alarm();
    const fired = await new Promise<number>((resolve) => {
      const at = Date.now() + 50;
      alarm.set(new Date(at), () => resolve(Date.now() - at));
    });
    assert.ok(fired >= -1, `fired ${fired} ms after the instant`);
    let late = false;
    alarm.set(new Date(Date.now() + 20), () => (late = true));
    alarm.clear();
    await new Promise((resolve) => setTimeout(resolve, 60));
    assert.equal(late, false);
  });

  it('is pending from set until it fires or is cleared', async () => {
    const alarm = new Alarm();
    assert.equal(alarm.pending, false);
    await new Promise<void>((resolve) => {
      alarm.set(new Date(), () => {
        assert.equal(alarm.pending, false, 'no longer pending inside its own callback');
        resolve();
      });
      assert.equal(alarm.pending, true);
    });
    alarm.set(days(1), () => undefined);
    assert.equal(alarm.pending, true);
    alarm.clear();
    assert.equal(alarm.pending, false);
  });

  it('waits for instants beyond the 24.8-day setTimeout limit instead of firing at once', async () => {
    const alarm = new Alarm();
    let fired = false;
    alarm.set(days(100_000), () => (fired = true));
    await new Promise((resolve) => setTimeout(resolve, 30));
    alarm.clear();
    assert.equal(fired, false);
  });
});
