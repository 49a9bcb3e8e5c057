/**
 * Registry bearer tokens (Docker token specification): JWTs signed with HS256 under the shared
 * signing key. Only this proxy issues and verifies them, so a symmetric key is enough and no JWT
 * library — with its algorithm-confusion history — is needed.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { SigningKey } from '../state/signing-key.js';
import { mergeAccess, sameResource, type Access } from '../registry/scope.js';
import { MIN_TOKEN_SECONDS } from '../registry/token-spec.js';

export interface TokenOptions {
  ttlSeconds: number;
  issuer: string;
  /** Verified tokens remembered, so the per-request check is a map lookup. */
  cacheSize?: number;
  /** Clock in milliseconds (tests). */
  now?: () => number;
}

export interface IssueRequest {
  subject: string | null;
  service: string;
  access: Access[];
  /** The subject's credential stamp (users.ts): the token is void once the entry changes. */
  stamp?: string;
  /** The identity source that verified the subject: the one that re-checks the token. */
  source?: string;
  /** The subject's groups from that source (the rules are asked again on every request). */
  groups?: readonly string[];
  /** The access token the subject logged in with: re-checked (revoked?) on every request. */
  token?: string;
  /** An OIDC login: the ID token's claims the rules read (the gate asks the rules again with them). */
  claims?: Readonly<Record<string, unknown>>;
}

/** A directory may hold many groups for a person; a token carries this many at most. */
export const MAX_TOKEN_GROUPS = 64;

/** The token endpoint's JSON body, field names as the Docker token specification has them. */
export interface IssuedToken {
  token: string;
  access_token: string;
  expires_in: number;
  issued_at: string;
}

export type TokenRejection = 'malformed' | 'signature' | 'expired' | 'not-yet-valid' | 'service' | 'key' | 'issuer' | 'lifetime';

export type TokenVerdict =
  | {
      ok: true;
      subject: string | null;
      access: Access[];
      stamp: string | null;
      source: string | null;
      groups: string[];
      token: string | null;
      /** Set for an OIDC login: the claims the rules read, flat. */
      claims: Readonly<Record<string, unknown>> | null;
      /** epoch milliseconds */
      expiresAt: number;
    }
  | { ok: false; reason: TokenRejection };

/** Far more than any token we issue; keeps hostile input from costing anything. */
export const MAX_TOKEN_LENGTH = 8192;
/** Replicas' clocks drift; a token used right after it was issued elsewhere must not fail. */
export const NOT_BEFORE_LEEWAY_SECONDS = 30;

const ALGORITHM = 'HS256';
const BASE64URL = /^[A-Za-z0-9_-]+$/;

interface Claims {
  iss: string;
  sub: string;
  aud: string;
  exp: number;
  nbf: number;
  iat: number;
  jti: string;
  access: Access[];
  stp?: string;
  src?: string;
  grp?: string[];
  tkn?: string;
  clm?: Readonly<Record<string, unknown>>;
}

interface Verified {
  subject: string | null;
  audiences: string[];
  access: readonly Access[];
  stamp: string | null;
  source: string | null;
  groups: readonly string[];
  token: string | null;
  claims: Readonly<Record<string, unknown>> | null;
  exp: number;
}

export class TokenAuthority {
  private readonly cache = new Map<string, Verified>();
  private readonly cacheSize: number;
  private readonly now: () => number;
  /** Seconds a token lives: the configured TTL, at least MIN_TOKEN_SECONDS. */
  readonly lifetime: number;

  constructor(
    private readonly key: SigningKey,
    private readonly options: TokenOptions,
  ) {
    if (!Number.isInteger(options.ttlSeconds) || options.ttlSeconds < 1) throw new RangeError('token TTL must be a positive integer');
    this.lifetime = Math.max(options.ttlSeconds, MIN_TOKEN_SECONDS);
    this.cacheSize = options.cacheSize ?? 1024;
    this.now = options.now ?? Date.now;
  }

  get keyId(): string {
    return this.key.id;
  }

  issue(request: IssueRequest): IssuedToken {
    const iat = Math.floor(this.now() / 1000);
    const claims: Claims = {
      iss: this.options.issuer,
      sub: request.subject ?? '',
      aud: request.service,
      exp: iat + this.lifetime,
      nbf: iat,
      iat,
      jti: randomBytes(16).toString('base64url'),
      access: mergeAccess(request.access)
        .filter((a) => a.actions.length > 0)
        .map(copyAccess),
    };
    if (request.stamp !== undefined) claims.stp = request.stamp;
    if (request.source !== undefined) claims.src = request.source;
    if (request.groups?.length) claims.grp = [...request.groups].sort().slice(0, MAX_TOKEN_GROUPS);
    if (request.token !== undefined) claims.tkn = request.token;
    if (request.claims !== undefined) claims.clm = request.claims;
    const header = { alg: ALGORITHM, typ: 'JWT', kid: this.key.id };
    const signingInput = `${encodeJson(header)}.${encodeJson(claims)}`;
    const token = `${signingInput}.${this.sign(signingInput).toString('base64url')}`;
    return { token, access_token: token, expires_in: this.lifetime, issued_at: new Date(iat * 1000).toISOString() };
  }

  /**
   * `graceSeconds`: how long after its expiry the token still counts — for the requests of an
   * upload session it opened (auth/gate.ts), never for anything else.
   */
  verify(token: string, expectedService: string, graceSeconds = 0): TokenVerdict {
    const nowSeconds = this.now() / 1000;
    let verified = this.cache.get(token);
    if (verified) {
      // Refresh recency: the map's insertion order is the LRU order.
      this.cache.delete(token);
      this.cache.set(token, verified);
    } else {
      const checked = this.check(token, nowSeconds);
      if ('reason' in checked) return { ok: false, reason: checked.reason };
      verified = checked;
      this.remember(token, verified);
    }
    if (nowSeconds >= verified.exp + graceSeconds) {
      if (nowSeconds >= verified.exp) this.cache.delete(token);
      return { ok: false, reason: 'expired' };
    }
    if (!verified.audiences.includes(expectedService)) return { ok: false, reason: 'service' };
    // A copy per use: the verdict of a cached token is shared by every request presenting it.
    return {
      ok: true,
      subject: verified.subject,
      access: verified.access.map(copyAccess),
      stamp: verified.stamp,
      source: verified.source,
      groups: [...verified.groups],
      token: verified.token,
      claims: verified.claims,
      expiresAt: verified.exp * 1000,
    };
  }

  private sign(signingInput: string): Buffer {
    return createHmac('sha256', this.key.secret).update(signingInput).digest();
  }

  private remember(token: string, verified: Verified): void {
    if (this.cache.size >= this.cacheSize) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    this.cache.set(token, verified);
  }

  /** Signature and time-independent claims; expiry and audience are judged by the caller on every use. */
  private check(token: string, nowSeconds: number): Verified | { reason: TokenRejection } {
    if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH) return { reason: 'malformed' };
    const parts = token.split('.');
    if (parts.length !== 3 || !parts.every((p) => BASE64URL.test(p))) return { reason: 'malformed' };
    const [encodedHeader, encodedPayload, encodedSignature] = parts as [string, string, string];

    const header = decodeJson(encodedHeader);
    if (!header) return { reason: 'malformed' };
    // The algorithm is ours to choose, never the token's: "none", RS256 & co. are refused outright.
    if (header.alg !== ALGORITHM) return { reason: 'signature' };
    if (header.kid !== this.key.id) return { reason: 'key' };

    const expected = this.sign(`${encodedHeader}.${encodedPayload}`);
    const given = Buffer.from(encodedSignature, 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { reason: 'signature' };

    const claims = decodeJson(encodedPayload);
    if (!claims) return { reason: 'malformed' };
    if (claims.iss !== this.options.issuer) return { reason: 'issuer' };
    const audiences = typeof claims.aud === 'string' ? [claims.aud] : claims.aud;
    if (!Array.isArray(audiences) || !audiences.every((a) => typeof a === 'string')) return { reason: 'malformed' };
    if (!isFiniteNumber(claims.exp)) return { reason: 'malformed' };
    if (claims.nbf !== undefined) {
      if (!isFiniteNumber(claims.nbf)) return { reason: 'malformed' };
      if (nowSeconds + NOT_BEFORE_LEEWAY_SECONDS < claims.nbf) return { reason: 'not-yet-valid' };
    }
    // We never issue a token that lives longer than the TTL: one that does was made with a stolen key.
    if (claims.exp > nowSeconds + this.lifetime + NOT_BEFORE_LEEWAY_SECONDS) return { reason: 'lifetime' };
    if (claims.sub !== undefined && typeof claims.sub !== 'string') return { reason: 'malformed' };
    if (claims.stp !== undefined && typeof claims.stp !== 'string') return { reason: 'malformed' };
    if (claims.src !== undefined && typeof claims.src !== 'string') return { reason: 'malformed' };
    if (claims.tkn !== undefined && typeof claims.tkn !== 'string') return { reason: 'malformed' };
    const groups = claims.grp ?? [];
    if (!Array.isArray(groups) || groups.length > MAX_TOKEN_GROUPS || !groups.every((g) => typeof g === 'string')) return { reason: 'malformed' };
    const access = parseAccessClaim(claims.access);
    if (!access) return { reason: 'malformed' };
    const carried = claims.clm;
    if (carried !== undefined && (typeof carried !== 'object' || carried === null || Array.isArray(carried))) return { reason: 'malformed' };
    return {
      subject: claims.sub ? claims.sub : null,
      audiences,
      access,
      stamp: typeof claims.stp === 'string' ? claims.stp : null,
      source: typeof claims.src === 'string' ? claims.src : null,
      groups,
      token: typeof claims.tkn === 'string' ? claims.tkn : null,
      claims: carried === undefined ? null : (carried as Record<string, unknown>),
      exp: claims.exp,
    };
  }
}

/** Whether the token's access list grants every action of `needed`. Nothing asked is not "covered": fail closed. */
export function covers(accessList: readonly Access[], needed: Access): boolean {
  if (needed.actions.length === 0) return false;
  return needed.actions.every((action) =>
    accessList.some((held) => sameResource(held, needed) && (held.actions.includes(action) || held.actions.includes('*'))),
  );
}

function copyAccess(access: Access): Access {
  const copy: Access = { type: access.type, name: access.name, actions: [...access.actions] };
  if (access.class) copy.class = access.class;
  return copy;
}

function parseAccessClaim(value: unknown): readonly Access[] | null {
  if (value === undefined) return [];
  if (!Array.isArray(value)) return null;
  const list: Access[] = [];
  for (const item of value) {
    if (typeof item !== 'object' || item === null) return null;
    const { type, name, actions, class: resourceClass } = item as Record<string, unknown>;
    if (typeof type !== 'string' || typeof name !== 'string') return null;
    if (!Array.isArray(actions) || !actions.every((a) => typeof a === 'string')) return null;
    if (resourceClass !== undefined && typeof resourceClass !== 'string') return null;
    const access: Access = { type, name, actions: [...actions] };
    if (resourceClass !== undefined) access.class = resourceClass;
    list.push(access);
  }
  return list;
}

function encodeJson(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

function decodeJson(encoded: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(Buffer.from(encoded, 'base64url').toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

function isFiniteNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}
