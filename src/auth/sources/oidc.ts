/**
 * OIDC ID tokens as an identity source: a CI job (GitHub Actions, GitLab CI, Forgejo, a Kubernetes
 * service account) logs in with the short-lived token its issuer signed as the password, any user
 * name. Nothing is stored: the issuer's signature, its audience and lifetime, and the configured
 * conditions on its claims decide; the identity's name and groups are built from claims.
 *
 * A secret that is not a JWT, or a JWT of another issuer, is not this source's (`unknown`): the
 * chain goes on, so an ID token source in front of htpasswd costs people's logins nothing. A JWT
 * of this issuer is decided here, and a refusal says what failed — never the token.
 */
import { decodeJwt, decodeProtectedHeader, errors, jwtVerify, type JWTPayload } from 'jose';
import { compileConditions, renderTemplate, type Conditions } from '../../access/claims.js';
import type { Config } from '../../config/types.js';
import type { Logger } from '../../observe/logger.js';
import { IssuerKeys, KeysUnavailable } from '../oidc/keys.js';
import type { HeldIdentity } from '../refresh-tokens.js';
import type { Authentication, IdentitySource } from './source.js';
import { sourceName } from './validate.js';

export type OidcConfig = Extract<Config['auth']['sources'][number], { type: 'oidc' }>;

/** GitHub's and GitLab's are 1–2 KB; 16 KiB is far beyond any issuer's and bounds what a guess costs. */
export const MAX_ID_TOKEN_BYTES = 16 * 1024;
export const DEFAULT_ALGORITHMS = ['RS256', 'ES256'] as const;
const JWT_SHAPE = /^[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*$/;

export function looksLikeJwt(secret: string): boolean {
  return JWT_SHAPE.test(secret);
}

export class OidcSource implements IdentitySource {
  readonly name: string;
  /** Never longer than the ID token lives (identify.ts takes the earlier of the two). */
  readonly cacheMs = 60_000;
  readonly issuer: string;
  readonly keys: IssuerKeys;
  /** How long a refresh token handed out for one of its logins may live, in seconds. */
  readonly maxJobSeconds: number;
  private readonly audience: string[];
  private readonly algorithms: string[];
  private readonly skew: number;
  private readonly required: Conditions;
  private readonly subject: string;
  private readonly groups: string[];
  private readonly now: () => number;

  constructor(config: OidcConfig, deps: { logger: Logger; ca: string | null; now?: () => number; keyRefreshCooldownMs?: number }) {
    this.now = deps.now ?? Date.now;
    this.name = sourceName(config);
    this.issuer = config.issuer;
    this.audience = config.audience;
    this.algorithms = config.algorithms ?? [...DEFAULT_ALGORITHMS];
    this.skew = config.clockSkewSeconds ?? 60;
    this.required = compileConditions(config.require ?? {});
    this.subject = config.subject ?? '${sub}';
    this.groups = config.groups ?? [];
    this.maxJobSeconds = (config.maxJobMinutes ?? 360) * 60;
    this.keys = new IssuerKeys({ issuer: config.issuer, jwksUrl: config.jwksUrl ?? null, ca: deps.ca, logger: deps.logger, label: `oidc source "${this.name}"`, now: this.now, ...(deps.keyRefreshCooldownMs !== undefined ? { cooldownMs: deps.keyRefreshCooldownMs } : {}) });
  }

  /** Fetch the keys now, so the first login does not wait and /readyz knows. */
  start(): void {
    void this.keys.refresh(true);
  }

  async authenticate(_user: string, secret: string): Promise<Authentication> {
    if (!looksLikeJwt(secret)) return { ok: false, reason: 'unknown', message: 'not an ID token' };
    if (secret.length > MAX_ID_TOKEN_BYTES) return { ok: false, reason: 'invalid', message: `ID token refused: ${secret.length} bytes, more than any issuer's (${MAX_ID_TOKEN_BYTES})` };
    let issuer: unknown;
    try {
      decodeProtectedHeader(secret);
      issuer = decodeJwt(secret).iss;
    } catch {
      return { ok: false, reason: 'unknown', message: 'not an ID token' };
    }
    if (issuer !== this.issuer) {
      return { ok: false, reason: 'unknown', message: 'not this issuer', hint: `ID token refused: its issuer ${JSON.stringify(issuer ?? null)} is not one this registry trusts` };
    }
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(secret, this.keys.resolve, {
        issuer: this.issuer,
        audience: this.audience,
        algorithms: this.algorithms,
        clockTolerance: this.skew,
        requiredClaims: ['exp', 'iat'],
        currentDate: new Date(this.now()),
      }));
    } catch (err) {
      if (err instanceof KeysUnavailable) return { ok: false, reason: 'unavailable', message: err.message };
      // jose checks the claims only once the signature verified.
      const genuine = err instanceof errors.JWTExpired || err instanceof errors.JWTClaimValidationFailed;
      return { ok: false, reason: 'invalid', message: `ID token refused: ${this.whyRefused(err, secret)}`, ...(genuine ? { genuine } : {}) };
    }
    if (payload.iat! > this.now() / 1000 + this.skew) return { ok: false, reason: 'invalid', message: `ID token refused: issued in the future (iat ${iso(payload.iat!)})`, genuine: true };
    return this.identityOf(payload);
  }

  /**
   * What verified claims make: the source's conditions, then the subject and groups built from
   * them. `registry-gate access check --claims` asks this with a job's claims from a file.
   */
  identityOf(payload: JWTPayload): Authentication {
    const condition = this.required.check(payload);
    if (!condition.ok) return { ok: false, reason: 'invalid', message: `ID token refused by oidc source "${this.name}": ${condition.why}`, genuine: true };
    const subject = renderTemplate(this.subject, payload);
    if (!subject.ok) return { ok: false, reason: 'invalid', message: `ID token refused: no subject (${subject.why}; see "subject" of oidc source "${this.name}")`, genuine: true };
    if (!/^[^\s\p{Cc}]{1,255}$/u.test(subject.text)) return { ok: false, reason: 'invalid', message: `ID token refused: its subject is empty, too long or has spaces`, genuine: true };
    const groups = this.groups.flatMap((template) => {
      const group = renderTemplate(template, payload);
      return group.ok && /^[^\s:\p{Cc}]{1,255}$/u.test(group.text) ? [group.text] : [];
    });
    return {
      ok: true,
      identity: { subject: subject.text, source: this.name, groups, stamp: null, claims: payload, ...(typeof payload.exp === 'number' ? { expiresAt: payload.exp * 1000 } : {}) },
    };
  }

  /** A refresh token of a CI job: its claims must still meet the conditions as they are configured now. */
  async renew(held: HeldIdentity): Promise<Authentication> {
    if (held.claims === null) return { ok: false, reason: 'invalid', message: 'the refresh token holds no claims' };
    const { exp: _exp, ...claims } = held.claims;
    return this.identityOf(claims);
  }

  /** An ID token's identity cannot own access tokens: there is nobody to look up. */
  async lookup(): Promise<Authentication> {
    return { ok: false, reason: 'unknown', message: 'an ID token identity is not looked up' };
  }

  /** Not re-checked: the registry token's lifetime and the ID token's bound it. */
  currentStamp(): undefined {
    return undefined;
  }

  degraded(): string[] {
    return this.keys.degraded();
  }

  async close(): Promise<void> {}

  private whyRefused(err: unknown, token: string): string {
    if (err instanceof errors.JWTExpired) return `expired at ${iso(Number(err.payload.exp))}; fetch a new one from the issuer`;
    if (err instanceof errors.JWTClaimValidationFailed) {
      if (err.claim === 'aud') return `its audience ${JSON.stringify(err.payload.aud ?? null)} is not ${this.audience.map((a) => `"${a}"`).join(' or ')}`;
      if (err.claim === 'nbf') return `not valid before ${iso(Number(err.payload.nbf))}`;
      return `claim "${err.claim}" ${err.reason === 'missing' ? 'is missing' : 'is not valid'}`;
    }
    if (err instanceof errors.JOSEAlgNotAllowed) return `signed with ${JSON.stringify(safeAlg(token))}, not one of ${this.algorithms.join(', ')}`;
    if (err instanceof errors.JWSSignatureVerificationFailed) return 'the signature does not verify';
    if (err instanceof errors.JWKSNoMatchingKey) return `signed with a key the issuer does not publish (kid ${JSON.stringify(safeKid(token))})`;
    if (err instanceof errors.JWKSMultipleMatchingKeys) return 'names no key id and the issuer publishes several keys';
    return 'malformed';
  }
}

function safeAlg(token: string): string | null {
  try {
    return String(decodeProtectedHeader(token).alg).slice(0, 20);
  } catch {
    return null;
  }
}

function safeKid(token: string): string | null {
  try {
    const kid = decodeProtectedHeader(token).kid;
    return typeof kid === 'string' ? kid.slice(0, 64) : null;
  } catch {
    return null;
  }
}

function iso(seconds: number): string {
  return Number.isFinite(seconds) ? new Date(seconds * 1000).toISOString() : 'an unreadable time';
}
