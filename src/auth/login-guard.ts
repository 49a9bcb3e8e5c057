/**
 * Failed-login limits: what stands between the password check and a guessing loop.
 *
 * - Only failed credential checks count: a bare 401 challenge (every docker session starts with
 *   one) never reaches this module, a source that is unavailable (a directory down) counts for
 *   nobody. The same wrong password from the same client is answered from memory (no second
 *   check): its first repeat is free — containerd POSTs /token, then GETs it with the same
 *   credentials — and every further one counts again, so a loop replaying one wrong password is
 *   cut to 429 like any guessing. Logins verified a moment ago, and identical checks under way, are answered by the
 *   identify chain before they get here (auth/identify.ts).
 * - A genuine credential that is refused (an ID token its issuer signed, but expired or for
 *   another audience) is no guess and counts for nobody; a forged or tampered one counts.
 * - Per user and client: after `failuresPerUser` failures in `windowSeconds`, each further
 *   failure closes that pair for 1, 2, 4 … seconds (at most `maxBackoffSeconds`); a success
 *   opens it again. The same user from another address is not affected: an attacker elsewhere
 *   cannot lock a user out.
 * - Per client: after `failuresPerClient` failures for any users, the same back-off for the
 *   whole address (spraying many names from one place).
 * - Per user, from anywhere: once a user has `failuresPerUser` failures in the window, its real
 *   password checks are paced to `checksPerSecondPerUser`, so guessing from many addresses stays
 *   slow too; a caller that finds the pace taken gets 429 and retries, nobody is locked out.
 *
 * Counters live in memory, or in Redis when `redis` is set (replicas then count together), with
 * memory as insurance while Redis is away. Keys are digests: user names come from the network.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Config } from '../config/types.js';
import { VerifyBusyError } from './verify-pool.js';
import { ExpiringMap } from './expiring-map.js';
import type { Authentication, Identity } from './sources/source.js';

export type LoginLimitsConfig = Config['loginLimits'];

export type LoginOutcome =
  | { ok: true; identity: Identity }
  | { ok: false; reason: 'invalid'; message: string }
  | { ok: false; reason: 'limited'; retryAfterSeconds: number; message: string }
  | { ok: false; reason: 'unavailable'; message: string };

/** One check of a name and secret against the identity sources (the chain; a fake in tests). */
export type Check = () => Promise<Authentication>;

/** How long the same wrong password from the same client is answered from memory. */
const REPEAT_MS = 60_000;
/** Repeats of one wrong password that do not count again (containerd's POST, then GET). */
const FREE_REPEATS = 1;
const MAX_REPEATS = 10_000;
/** The counters only count; they never refuse by themselves (see the cooldowns). */
const UNLIMITED = 2 ** 30;

export class LoginGuard {
  private readonly failures: RateLimiterAbstract;
  private readonly cooldowns: RateLimiterAbstract;
  private readonly pace: RateLimiterAbstract;
  /** Wrong passwords seen lately, with how often each came again. */
  private readonly repeats = new ExpiringMap<number>(REPEAT_MS, MAX_REPEATS);
  private readonly repeatKey = randomBytes(32);

  /** `entryOf`: what the sources hold for a name now (a changed entry makes nothing old a repeat). */
  constructor(
    private readonly limits: LoginLimitsConfig,
    private readonly entryOf: (user: string) => string,
    redis: Redis | null = null,
  ) {
    const make = (keyPrefix: string, points: number, duration: number): RateLimiterAbstract => {
      const memory = new RateLimiterMemory({ keyPrefix, points, duration });
      return redis ? new RateLimiterRedis({ storeClient: redis, keyPrefix: `registry-gate:${keyPrefix}`, points, duration, insuranceLimiter: memory }) : memory;
    };
    this.failures = make('login-failures', UNLIMITED, limits.windowSeconds);
    this.cooldowns = make('login-cooldown', 1, limits.maxBackoffSeconds);
    this.pace = make('login-pace', limits.checksPerSecondPerUser, 1);
  }

  /** The one way a secret is checked (gate and token service alike, through the identify chain). */
  async login(user: string, password: string, client: string, check: Check): Promise<LoginOutcome> {
    try {
      return await this.guarded(user, password, client, check);
    } catch (err) {
      // More bcrypt checks queued than the pool takes: shed load instead of stalling everyone.
      if (err instanceof VerifyBusyError) return { ok: false, reason: 'limited', retryAfterSeconds: 1, message: 'too many password checks at once, retry shortly' };
      throw err;
    }
  }

  private async guarded(user: string, password: string, client: string, check: Check): Promise<LoginOutcome> {
    if (!this.limits.enabled) return outcomeOf(await check());
    const pair = `pair:${digest(user, client)}`;
    const address = `client:${digest('', client)}`;
    const everywhere = `user:${digest(user, '')}`;

    const repeat = this.repeatOf(user, password, client);
    const repeats = this.repeats.get(repeat);
    if (repeats !== undefined && repeats < FREE_REPEATS) {
      this.repeats.set(repeat, repeats + 1);
      return INVALID;
    }

    const closed = await this.closedFor([pair, address]);
    if (closed > 0) return this.limited(user, client, closed);
    if (repeats !== undefined) {
      // Known to be wrong: no check, but it counts like one.
      this.repeats.set(repeat, repeats + 1);
      await this.countFailure(pair, address, everywhere);
      return INVALID;
    }
    if ((await this.count(everywhere)) >= this.limits.failuresPerUser) {
      try {
        await this.pace.consume(everywhere);
      } catch (res) {
        if (res instanceof RateLimiterRes) return this.limited(user, client, res.msBeforeNext);
        throw res;
      }
    }

    const answer = await check();
    if (answer.ok) {
      await this.failures.delete(pair);
      await this.cooldowns.delete(pair);
      return { ok: true, identity: answer.identity };
    }
    // A source that cannot answer is an outage, not a guess: nothing counts, nobody is closed.
    if (answer.reason === 'unavailable') return outcomeOf(answer);
    if (answer.reason === 'invalid' && answer.genuine) return { ok: false, reason: 'invalid', message: answer.message };
    this.repeats.set(repeat, 0);
    await this.countFailure(pair, address, everywhere);
    // A source says more than "invalid" only once the secret proved right (an access token expired).
    return { ok: false, reason: 'invalid', message: answer.message };
  }

  private async countFailure(pair: string, address: string, everywhere: string): Promise<void> {
    await Promise.all([this.fail(pair, this.limits.failuresPerUser), this.fail(address, this.limits.failuresPerClient), this.failures.penalty(everywhere)]);
  }

  /** One more failure for `key`; past `threshold` the key closes for 1, 2, 4 … seconds. */
  private async fail(key: string, threshold: number): Promise<void> {
    const res = await this.failures.penalty(key);
    const excess = res.consumedPoints - threshold;
    if (excess >= 0) await this.cooldowns.set(key, 1, Math.min(this.limits.maxBackoffSeconds, 2 ** Math.min(excess, 30)));
  }

  private async count(key: string): Promise<number> {
    return (await this.failures.get(key))?.consumedPoints ?? 0;
  }

  /** Milliseconds until every key is open again; 0 when none is closed. */
  private async closedFor(keys: string[]): Promise<number> {
    const states = await Promise.all(keys.map((k) => this.cooldowns.get(k)));
    return Math.max(0, ...states.map((s) => (s && s.consumedPoints > 0 ? s.msBeforeNext : 0)));
  }

  private limited(user: string, client: string, ms: number): LoginOutcome {
    const retryAfterSeconds = Math.max(1, Math.ceil(ms / 1000));
    return {
      ok: false,
      reason: 'limited',
      retryAfterSeconds,
      message: `too many failed logins for user "${user}" or from ${client}; retry in ${retryAfterSeconds} s`,
    };
  }

  /** Keyed by the user's current entry too: after a password change nothing old is a repeat. */
  private repeatOf(user: string, password: string, client: string): string {
    return createHmac('sha256', this.repeatKey)
      .update(`${Buffer.byteLength(user)}:${user}\0${client}\0${this.entryOf(user)}\0`)
      .update(password)
      .digest('base64url');
  }
}

const INVALID: LoginOutcome = { ok: false, reason: 'invalid', message: 'invalid username or password' };

/** The chain's answer as the limits see it: every source that does not know the name is a wrong password too. */
function outcomeOf(answer: Authentication): LoginOutcome {
  if (answer.ok) return { ok: true, identity: answer.identity };
  if (answer.reason === 'unavailable') return { ok: false, reason: 'unavailable', message: answer.message };
  return answer.reason === 'unknown' ? INVALID : { ok: false, reason: 'invalid', message: answer.message };
}

function digest(user: string, client: string): string {
  return createHash('sha256').update(`${Buffer.byteLength(user)}:${user}\0${client}`).digest('base64url').slice(0, 22);
}
