import type { IncomingHttpHeaders } from 'node:http';
import type { AuthConfig } from '../config/types.js';
import type { RegistryErrorCode } from '../proxy/errors.js';
import { parseAuthorization } from './credentials.js';
import { accessForRequest } from './route.js';
import { grantedActions } from './policy.js';
import { formatScope, type Access } from './scope.js';
import { covers, type TokenAuthority } from './token.js';
import { basicChallenge, bearerChallenge } from './challenge.js';
import type { UserStore } from './users.js';
import { VerifyBusyError } from './verify-pool.js';

/** Where clients fetch tokens, as this request's client sees the proxy. */
export interface TokenService {
  realm: string;
  service: string;
}

export type Verdict =
  | { allow: true; subject: string | null }
  | {
      allow: false;
      status: 401 | 403 | 429;
      code: RegistryErrorCode;
      message: string;
      challenge?: string;
      retryAfterSeconds?: number;
      subject: string | null;
    };

interface Caller {
  subject: string | null;
  /** Set when the caller came with a token: it may do exactly what the token says. */
  tokenAccess?: Access[];
}

/**
 * identify → authorize for one /v2/ request. Basic credentials are checked against htpasswd
 * (cached after the first success); Bearer tokens are checked for signature, expiry and service,
 * then for covering the request. What an identity may do comes from policy.ts alone.
 */
export class AuthGate {
  constructor(
    private readonly auth: AuthConfig,
    private readonly users: UserStore | null,
    private readonly authority: TokenAuthority | null,
  ) {}

  async check(method: string, pathname: string, query: URLSearchParams, headers: IncomingHttpHeaders, token: TokenService): Promise<Verdict> {
    if (this.auth.mode === 'none') return { allow: true, subject: null };
    const identified = await this.identify(headers.authorization, token);
    if ('deny' in identified) return identified.deny;
    const caller = identified;
    const route = accessForRequest(method, pathname, query);

    if (route.kind === 'ping') {
      // Clients choose their auth scheme from this answer; anonymous must see the challenge.
      if (caller.subject !== null || caller.tokenAccess) return { allow: true, subject: caller.subject };
      return this.unauthorized(caller, token, [], 'authentication required');
    }
    if (route.kind === 'unknown') {
      if (caller.subject !== null) return { allow: true, subject: caller.subject };
      return this.unauthorized(caller, token, [], 'authentication required');
    }
    const missing = route.access.filter((needed) => !this.permits(caller, needed));
    if (missing.length === 0) return { allow: true, subject: caller.subject };
    const what = missing.map(describeAccess).join('; ');
    if (caller.subject !== null && !caller.tokenAccess) {
      return { allow: false, status: 403, code: 'DENIED', message: `user "${caller.subject}" may not ${what}`, subject: caller.subject };
    }
    const message = caller.subject === null ? `authentication required to ${what}` : `token does not allow to ${what}`;
    return this.unauthorized(caller, token, missing, message);
  }

  private async identify(header: string | undefined, token: TokenService): Promise<Caller | { deny: Verdict }> {
    const credentials = parseAuthorization(header);
    switch (credentials.kind) {
      case 'none':
        return { subject: null };
      case 'malformed':
        return { deny: this.unauthorized({ subject: null }, token, [], 'malformed Authorization header') };
      case 'basic':
        try {
          if (this.users && (await this.users.verify(credentials.user, credentials.password))) return { subject: credentials.user };
        } catch (err) {
          // More bcrypt checks queued than the pool takes: shed load instead of stalling everyone.
          if (err instanceof VerifyBusyError) {
            return { deny: { allow: false, status: 429, code: 'TOOMANYREQUESTS', message: 'too many password checks at once, retry shortly', retryAfterSeconds: 1, subject: null } };
          }
          throw err;
        }
        return { deny: this.unauthorized({ subject: null }, token, [], 'invalid username or password') };
      case 'bearer': {
        if (!this.authority) return { deny: this.unauthorized({ subject: null }, token, [], 'bearer tokens are not accepted here; use Basic credentials') };
        const verified = this.authority.verify(credentials.token, token.service);
        if (!verified.ok) {
          return { deny: this.unauthorized({ subject: null }, token, [], `invalid token (${verified.reason})`, 'invalid_token') };
        }
        return { subject: verified.subject, tokenAccess: verified.access };
      }
    }
  }

  private permits(caller: Caller, needed: Access): boolean {
    if (caller.tokenAccess) return covers(caller.tokenAccess, needed);
    const granted = grantedActions(this.auth.mode, caller.subject, needed, { publicCatalog: this.auth.publicCatalog });
    return needed.actions.every((a) => granted.includes(a));
  }

  /**
   * A user's token that lacks a scope gets `insufficient_scope`, so the client fetches a better one.
   * An anonymous caller lacks authentication, not scope: per RFC 6750 that challenge carries no
   * error code — and docker then prints our "unauthorized: …" message instead of its generic
   * "denied: requested access to the resource is denied".
   */
  private unauthorized(caller: Caller, token: TokenService, scopes: Access[], message: string, error?: 'invalid_token'): Verdict {
    const challenge =
      this.auth.challenge === 'basic' || !this.authority
        ? basicChallenge(this.auth.realm)
        : bearerChallenge({
            realm: token.realm,
            service: token.service,
            scope: scopes.length ? scopes.map(formatScope) : undefined,
            error: error ?? (caller.tokenAccess && caller.subject !== null && scopes.length ? 'insufficient_scope' : undefined),
          });
    return { allow: false, status: 401, code: 'UNAUTHORIZED', message, challenge, subject: caller.subject };
  }
}

function describeAccess(a: Access): string {
  if (a.type === 'registry') return 'list repositories';
  return `${a.actions.join('+')} ${a.name}`;
}
