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
import type { HeldIdentity } from './refresh-tokens.js';
import type { Authentication, Identity, IdentitySource, TokenGrant } from './sources/source.js';

/** What a registry token remembers of the identity it was issued to. */
export interface IssuedTo {
  source: string | null;
  subject: string;
  /** The access token it came from, if any. */
  token: string | null;
  stamp: string | null;
}

const MAX_VERIFIED = 10_000;

/** A login is remembered for its source's time, never past what proved it. */
function rememberFor(identity: Identity, cacheMs: number): number {
  return identity.expiresAt === undefined ? cacheMs : Math.max(0, Math.min(cacheMs, identity.expiresAt - Date.now()));
}

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
        if (outcome.ok) this.verified.set(key, outcome.identity, rememberFor(outcome.identity, this.byName.get(outcome.identity.source)?.cacheMs ?? 0));
        return outcome;
      })
      .finally(() => this.inflight.delete(merged));
    this.inflight.set(merged, check);
    return check;
  }

  /**
   * A registry token, on every request: does the source that verified its subject still vouch
   * for it (tokens from before sources existed are htpasswd's)? A user removed, a password
   * changed, an access token revoked or expired: the token is void, and the client logs in again
   * (and fails, if what it holds is no longer good). Sources that do not re-check (a directory)
   * leave it to the token's lifetime.
   */
  recheck(issued: IssuedTo): { ok: true; token?: TokenGrant } | { ok: false; why: string } {
    const source = this.byName.get(issued.source ?? 'htpasswd');
    if (!source) return { ok: false, why: `identity source "${issued.source}" is no longer configured` };
    if (issued.token !== null) {
      const grant = source.grant?.(issued.token) ?? null;
      if (grant === null || source.currentStamp(issued.token) !== issued.stamp) return { ok: false, why: `access token "${issued.token}" was revoked or has expired` };
      return { ok: true, token: grant };
    }
    const current = source.currentStamp(issued.subject);
    if (current === undefined || current === issued.stamp) return { ok: true };
    return { ok: false, why: current === null ? `user "${issued.subject}" no longer exists` : `the password of "${issued.subject}" changed` };
  }

  /**
   * The identity a refresh token stands for, as it is now: the source that verified it is asked
   * again (a directory: is the user still there, in which groups; htpasswd: the same password).
   */
  async renew(held: HeldIdentity): Promise<Authentication> {
    const source = this.byName.get(held.source);
    if (!source) return { ok: false, reason: 'invalid', message: `identity source "${held.source}" is no longer configured` };
    if (source.renew) return source.renew(held);
    const found = await source.lookup(held.subject);
    if (!found.ok) return found.reason === 'unavailable' ? found : { ok: false, reason: 'invalid', message: `user "${held.subject}" no longer exists` };
    const stamp = source.currentStamp(held.subject);
    if (typeof stamp === 'string' && stamp !== held.stamp) return { ok: false, reason: 'invalid', message: `the password of "${held.subject}" changed` };
    return found;
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
    let hint: string | undefined;
    for (const source of this.sources) {
      const answer = await source.authenticate(user, secret, client);
      if (answer.ok || answer.reason !== 'unknown') return answer;
      hint ??= answer.hint;
    }
    return { ok: false, reason: 'invalid', message: hint ?? 'invalid username or password' };
  }

  /** A remembered login whose entry changed (a new password, a removed user) is asked again. */
  private stillVouched(identity: Identity): boolean {
    const now = this.byName.get(identity.source)?.currentStamp(identity.token?.name ?? identity.subject);
    return now === undefined || now === identity.stamp;
  }

  /** Keyed by an HMAC under a per-process secret, so the cache never holds anything secret-derived that can be attacked offline. */
  private keyOf(user: string, secret: string): string {
    return createHmac('sha256', this.cacheKeySecret).update(`${Buffer.byteLength(user)}:${user}`).update(secret).digest('base64');
  }
}
