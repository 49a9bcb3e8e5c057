/**
 * Access tokens as an identity source: the token's name as the user name, its `rgt_…` secret as
 * the password (`docker login -u ci-builder`). A token acts for its owner: the identity is the
 * owner's — found again in the other sources on every login, so an owner who left the directory
 * or the htpasswd file takes their tokens along — bounded by the token's scopes.
 *
 * A name this source holds is decided here (a wrong secret is `invalid`), so a person's password
 * is never tried against a token name nor the other way round; names it does not hold go on down
 * the chain.
 */
import { ScopeLimit } from '../../access/token-scope.js';
import type { Config } from '../../config/types.js';
import { isExpired, secretMatches, type StoredToken } from '../access-tokens/record.js';
import type { TokenStore } from '../access-tokens/store.js';
import type { HeldIdentity } from '../refresh-tokens.js';
import type { Authentication, IdentitySource, TokenGrant } from './source.js';
import { sourceName } from './validate.js';

export type TokensConfig = Extract<Config['auth']['sources'][number], { type: 'tokens' }>;

const INVALID = 'invalid username or password';

/** Asks the other sources, in order, for a token's owner. */
export type OwnerLookup = (owner: string) => Promise<Authentication>;

export class TokensSource implements IdentitySource {
  readonly name: string;
  readonly cacheMs = 60_000;
  readonly maxDays: number;
  readonly adminGroup: string | null;
  private readonly limits = new WeakMap<StoredToken, ScopeLimit>();

  constructor(
    config: TokensConfig,
    readonly store: TokenStore,
    /** The other sources, asked in order, for an owner. */
    readonly findOwner: OwnerLookup,
    /** Whether some other source still holds the owner, as far as it can tell without asking (a re-check on every request). */
    private readonly ownerGone: (owner: string) => boolean,
    private readonly now: () => number = Date.now,
  ) {
    this.name = sourceName(config);
    this.maxDays = config.maxDays ?? 365;
    this.adminGroup = config.adminGroup ?? null;
  }

  async authenticate(user: string, secret: string): Promise<Authentication> {
    const stored = this.store.get(user);
    if (!stored) return { ok: false, reason: 'unknown', message: INVALID };
    if (!secretMatches(stored, secret)) return { ok: false, reason: 'invalid', message: INVALID };
    if (isExpired(stored, this.now())) return { ok: false, reason: 'invalid', message: `access token "${stored.name}" expired at ${stored.expires}; create a new one` };
    return this.actFor(stored);
  }

  /** A refresh token made from a login with an access token: the same token, still valid, and its owner still known. */
  async renew(held: HeldIdentity): Promise<Authentication> {
    const stored = held.token === null ? null : this.valid(held.token);
    if (!stored || stored.id !== held.stamp) return { ok: false, reason: 'invalid', message: `access token "${held.token ?? ''}" was revoked or has expired` };
    return this.actFor(stored);
  }

  private async actFor(stored: StoredToken): Promise<Authentication> {
    const owner = await this.findOwner(stored.owner);
    if (!owner.ok) {
      if (owner.reason === 'unavailable') return owner;
      return { ok: false, reason: 'invalid', message: `the owner "${stored.owner}" of access token "${stored.name}" is no longer known; the token has no rights` };
    }
    this.store.markUsed(stored.name, this.now());
    return {
      ok: true,
      identity: { subject: stored.owner, source: this.name, groups: owner.identity.groups, stamp: stored.id, token: this.grantOf(stored) },
    };
  }

  /** Access tokens do not own tokens. */
  async lookup(): Promise<Authentication> {
    return { ok: false, reason: 'unknown', message: 'an access token cannot own tokens' };
  }

  /** By token name: its id while it is valid (a token made again under the name has another). */
  currentStamp(name: string): string | null {
    const stored = this.valid(name);
    return stored ? stored.id : null;
  }

  grant(name: string): TokenGrant | null {
    const stored = this.valid(name);
    return stored ? this.grantOf(stored) : null;
  }

  degraded(): string[] {
    return [];
  }

  async reload(): Promise<void> {
    await this.store.refresh();
  }

  close(): Promise<void> {
    return this.store.close();
  }

  private valid(name: string): StoredToken | null {
    const stored = this.store.get(name);
    if (!stored || isExpired(stored, this.now()) || this.ownerGone(stored.owner)) return null;
    return stored;
  }

  grantOf(stored: StoredToken): TokenGrant {
    let limit = this.limits.get(stored);
    if (!limit) this.limits.set(stored, (limit = new ScopeLimit(stored.scopes)));
    return { name: stored.name, limit };
  }
}
