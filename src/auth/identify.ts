/**
 * The identify chain: one way a name and secret become an identity, for the /v2/ Basic path and
 * the token endpoint alike. In this order:
 * 1. a login verified a moment ago (by user and secret, whatever the address) is answered from
 *    memory while its source still vouches for it — Basic auth on every request of a script costs
 *    nothing;
 * 2. identical checks from one client under way are one check (docker sends several layers at
 *    once), merged before the limits, so a right password is never paced against itself;
 * 3. the failed-login limits (auth/login-guard.ts), around
 * 4. the sources in the configured order: the first that knows the name decides; `invalid` and
 *    `unavailable` end the chain (see sources/source.ts), a name no source knows is `invalid`.
 */
import { createHmac, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { ExpiringMap } from './expiring-map.js';
import { LoginGuard, type LoginLimitsConfig, type LoginOutcome } from './login-guard.js';
import type { Authentication, Identity, IdentitySource } from './sources/source.js';

const MAX_VERIFIED = 10_000;

export class Identifier {
  private readonly verified = new ExpiringMap<Identity>(60_000, MAX_VERIFIED);
  private readonly inflight = new Map<string, Promise<LoginOutcome>>();
  private readonly cacheKeySecret = randomBytes(32);
  private readonly guard: LoginGuard;
  private readonly byName: Map<string, IdentitySource>;

  constructor(
    private readonly sources: readonly IdentitySource[],
    limits: LoginLimitsConfig,
    redis: Redis | null = null,
  ) {
    this.byName = new Map(sources.map((s) => [s.name, s]));
    this.guard = new LoginGuard(limits, (user) => sources.map((s) => s.currentStamp(user) ?? '-').join(','), redis);
  }

  async login(user: string, secret: string, client: string): Promise<LoginOutcome> {
    const key = this.keyOf(user, secret);
    const known = this.verified.get(key);
    if (known && this.stillVouched(known)) return { ok: true, identity: known };
    const merged = `${key}\0${client}`;
    const running = this.inflight.get(merged);
    if (running) return running;
    const check = this.guard
      .login(user, secret, client, () => this.ask(user, secret, client))
      .then((outcome) => {
        if (outcome.ok) this.verified.set(key, outcome.identity, this.byName.get(outcome.identity.source)?.cacheMs ?? 0);
        return outcome;
      })
      .finally(() => this.inflight.delete(merged));
    this.inflight.set(merged, check);
    return check;
  }

  /**
   * For a token: the stamp its subject has now at the source that issued it (tokens from before
   * sources existed are htpasswd's); null when the source or the subject is gone, undefined when
   * the source does not re-check.
   */
  currentStamp(source: string | null, subject: string): string | null | undefined {
    const found = this.byName.get(source ?? 'htpasswd');
    return found ? found.currentStamp(subject) : null;
  }

  /** Whether some source holds this name now (metrics: unknown user or wrong password). */
  knows(user: string): boolean {
    return this.sources.some((s) => typeof s.currentStamp(user) === 'string');
  }

  degraded(): string[] {
    return this.sources.flatMap((s) => s.degraded());
  }

  async reload(): Promise<void> {
    await Promise.all(this.sources.map((s) => s.reload?.()));
  }

  async close(): Promise<void> {
    this.verified.clear();
    await Promise.all(this.sources.map((s) => s.close()));
  }

  private async ask(user: string, secret: string, client: string): Promise<Authentication> {
    for (const source of this.sources) {
      const answer = await source.authenticate(user, secret, client);
      if (answer.ok || answer.reason !== 'unknown') return answer;
    }
    return { ok: false, reason: 'invalid', message: 'invalid username or password' };
  }

  /** A remembered login whose entry changed (a new password, a removed user) is asked again. */
  private stillVouched(identity: Identity): boolean {
    const now = this.byName.get(identity.source)?.currentStamp(identity.subject);
    return now === undefined || now === identity.stamp;
  }

  /** Keyed by an HMAC under a per-process secret, so the cache never holds anything secret-derived that can be attacked offline. */
  private keyOf(user: string, secret: string): string {
    return createHmac('sha256', this.cacheKeySecret).update(`${Buffer.byteLength(user)}:${user}`).update(secret).digest('base64');
  }
}
