import type { Claims } from '../../access/claims.js';
import type { ScopeLimit } from '../../access/token-scope.js';
import type { HeldIdentity } from '../refresh-tokens.js';

/**
 * An identity source: where a user name and secret are checked (htpasswd, a directory). The
 * identify chain (auth/identify.ts) asks them in the configured order; each answers with one
 * shape, and the difference between its failures is the point:
 * - `unknown`: the name is not this source's; the next source is asked.
 * - `invalid`: the name is this source's and the secret is wrong; the chain stops, and only this
 *   counts towards the failed-login limits.
 * - `unavailable`: the source cannot tell now (a directory down). The chain stops: another source
 *   must not accept a name this one might hold, and nobody is counted or locked out for it.
 */
export interface Identity {
  subject: string;
  /** The source that verified it: what tokens carry, so the same source re-checks them. */
  source: string;
  /** Groups the source knows the subject by (the configured groups are added by the policy). */
  groups: readonly string[];
  /** What a token issued to it remembers (see IdentitySource.currentStamp); null when the source does not re-check. */
  stamp: string | null;
  /** Where the source found it, for `registry-gate auth test` (a directory entry's DN). */
  entry?: string;
  /**
   * A login with an access token: `subject` is its owner, whose rights it has at most, and the
   * token's scopes bound it further. Re-checks (stamps) are by the token's name.
   */
  token?: TokenGrant;
  /** A login with an OIDC ID token: its verified claims (rules may ask them). */
  claims?: Claims;
  /** When what proved it stops being valid (an ID token's `exp`), epoch ms: never remembered past it. */
  expiresAt?: number;
}

export interface TokenGrant {
  name: string;
  limit: ScopeLimit;
}

export type Authentication =
  | { ok: true; identity: Identity }
  | {
      ok: false;
      reason: 'unknown' | 'invalid' | 'unavailable';
      message: string;
      /** For `unknown`: what to tell the caller if no source knows it either ("an ID token of an issuer nobody trusts"). */
      hint?: string;
      /**
       * For `invalid`: the secret is genuine but not acceptable — an ID token its issuer signed
       * that expired, names another audience or fails a condition. No guess: the failed-login
       * limits do not count it (CI jobs share a user name and runner addresses; one job's stale
       * token must not lock out the others).
       */
      genuine?: boolean;
    };

export interface IdentitySource {
  /** Its name in tokens, the audit log and messages ("htpasswd", "ldap"). */
  readonly name: string;
  /** How long a verified login may be answered from memory without asking again. */
  readonly cacheMs: number;
  /** Sources of CI jobs (oidc): how long a refresh token handed out for one of their logins may live, in seconds. */
  readonly maxJobSeconds?: number;
  authenticate(user: string, secret: string, client: string): Promise<Authentication>;
  /**
   * The identity of `user` without a secret (an access token's owner: do they still exist, with
   * which groups). `unknown` when this source does not hold the name.
   */
  lookup(user: string): Promise<Authentication>;
  /** For sources whose logins act for another (access tokens): what the one named `name` is allowed at most; null when gone. */
  grant?(name: string): TokenGrant | null;
  /**
   * For a token issued to `subject`: its stamp now (a token with another stamp is refused: the
   * password changed), null when the subject is gone, undefined when this source does not
   * re-check (the token's lifetime bounds it).
   */
  currentStamp(subject: string): string | null | undefined;
  /**
   * A refresh token's identity, asked for again without a secret: still there, still the same?
   * Sources without it are asked `lookup` and their stamp (auth/identify.ts).
   */
  renew?(held: HeldIdentity): Promise<Authentication>;
  /** What works less well right now (for /readyz "degraded"); empty when all is well. */
  degraded(): string[];
  /** SIGHUP: read what it reads from files again. */
  reload?(): Promise<void>;
  close(): Promise<void>;
}
