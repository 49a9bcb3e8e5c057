import type { IncomingHttpHeaders } from 'node:http';
import type { AuthConfig } from '../config/types.js';
import type { AccessPolicy } from '../access/policy.js';
import type { Caller } from '../access/rules.js';
import type { RegistryErrorCode } from '../registry/errors.js';
import type { Route } from '../registry/route.js';
import { formatScope, type Access } from '../registry/scope.js';
import { parseAuthorization, type Credentials } from './credentials.js';
import { covers, type TokenAuthority } from './token.js';
import { basicChallenge, bearerChallenge } from './challenge.js';
import type { Identifier } from './identify.js';
import type { TokenGrant } from './sources/source.js';

/**
 * How long after its token expired an upload session may go on, for the caller the token names:
 * a layer that takes longer to send than a token lives must still be committed (the final PUT
 * comes after the bytes). Only requests inside a session already opened (its id in the path) get
 * it; the caller's source and the rules are asked again as on any request.
 */
export const UPLOAD_SESSION_GRACE_SECONDS = 3600;

export interface FailedLogin {
  user: string;
  reason: string;
}

/** Where clients fetch tokens, as this request's client sees the proxy. */
export interface TokenService {
  realm: string;
  service: string;
}

type Decided =
  | { ok: true; subject: string | null; caller: Caller }
  | {
      ok: false;
      code: RegistryErrorCode;
      message: string;
      challenge?: string;
      retryAfterSeconds?: number;
      subject: string | null;
      /** The access token the subject came with, when refused for what it may not do. */
      token?: string;
      /** The oidc source that verified the subject (a CI job), when refused for what it may not do. */
      issuer?: string;
      /** A login that failed or was refused (for the audit log); never the password. */
      failedLogin?: FailedLogin;
    };

/** `presented`: the caller sent credentials or a token (a 401 to it is a refusal, not the first challenge). */
export type Verdict = Decided & { presented: boolean };

interface Identity {
  subject: string | null;
  /** Groups from the identity's source (a directory), added to the configured ones. */
  groups?: readonly string[];
  /** An access token acting for `subject`. */
  token?: TokenGrant;
  /** Set when the caller came with a token: it may do at most what the token says. */
  tokenAccess?: readonly Access[];
  /** An OIDC login: the source and the ID token's claims. */
  oidc?: { issuer: string; claims: Readonly<Record<string, unknown>> };
}

/**
 * identify → authorize for one /v2/ request whose route the pipeline has decided. Basic
 * credentials go through the identify chain (auth/identify.ts); Bearer tokens are checked for
 * signature, expiry and service, by the source that issued them, then for covering the request.
 * Either way the access rules are asked too, on every request: a token never outlives a rule that
 * was tightened.
 */
export class AuthGate {
  constructor(
    private readonly auth: AuthConfig,
    /** Null with auth "none": nobody logs in. */
    private readonly identifier: Identifier | null,
    private readonly authority: TokenAuthority | null,
    private readonly policy: AccessPolicy,
  ) {}

  /** `client`: the caller's address as the access log has it (login limits count per client). */
  async check(route: Route, headers: IncomingHttpHeaders, token: TokenService, client: string): Promise<Verdict> {
    const credentials = parseAuthorization(headers.authorization);
    const decided = await this.decide(route, credentials, token, client);
    return { ...decided, presented: credentials.kind !== 'none' };
  }

  private async decide(route: Route, credentials: Credentials, token: TokenService, client: string): Promise<Decided> {
    if (this.auth.mode === 'none') return { ok: true, subject: null, caller: this.policy.caller(null) };
    const identified = await this.identify(credentials, token, client, route.kind === 'repository' && route.session);
    if ('deny' in identified) return identified.deny;
    const identity = identified;
    const caller = this.policy.caller(identity.subject, identity.groups, identity.token, identity.oidc);
    const pass: Decided = { ok: true, subject: identity.subject, caller };

    switch (route.kind) {
      case 'ping':
        // Clients choose their auth scheme from this answer; anonymous must see the challenge.
        return identity.subject !== null || identity.tokenAccess ? pass : this.unauthorized(identity, token, [], 'authentication required');
      case 'unknown':
        if (this.policy.mayDoEverything(caller) && (identity.subject !== null || identity.tokenAccess)) return pass;
        if (identity.subject === null && !identity.tokenAccess) return this.unauthorized(identity, token, [], 'authentication required');
        return {
          ok: false,
          code: 'DENIED',
          message: 'this request is not one the proxy can authorize (odd path, method or encoding); only callers allowed "*" on "**" may send it',
          subject: identity.subject,
        };
      case 'catalog':
      case 'malformed':
      case 'repository': {
        const missing = route.needs.filter((needed) => !this.permits(identity, caller, needed));
        if (missing.length === 0) return pass;
        const what = missing.map(describeAccess).join('; ');
        // The challenge names everything the request needs, not only what is missing: a client
        // fetches a token for exactly the challenged scopes and retries once with it alone (a
        // mount challenged for its target only then failed on its `from`).
        if (identity.subject === null && !identity.tokenAccess) return this.unauthorized(identity, token, route.needs, `authentication required to ${what}`);
        // A token narrower than what the rules allow: a new token helps, so say which scope to ask.
        if (identity.tokenAccess && missing.every((needed) => this.policy.decide(caller, needed).ok)) {
          return this.unauthorized(identity, token, route.needs, `token does not allow to ${what}`);
        }
        // Final: no token would help. A 403 with our message is what every client prints at once;
        // a 401 here sends docker, skopeo and containerd round the token endpoint again before
        // they give up with a generic "requested access to the resource is denied".
        const message =
          identity.subject === null
            ? `authentication required to ${what}: anonymous callers may not; log in first`
            : identity.token
              ? `access token "${identity.token.name}" may not ${what} (${this.whyNot(caller, missing)})`
              : identity.oidc
                ? `CI job "${identity.subject}" (oidc:${identity.oidc.issuer}) may not ${what} (${this.whyNot(caller, missing)})`
                : `user "${identity.subject}" may not ${what}`;
        return {
          ok: false,
          code: 'DENIED',
          message,
          subject: identity.subject,
          ...(identity.token ? { token: identity.token.name } : {}),
          ...(identity.oidc ? { issuer: identity.oidc.issuer } : {}),
        };
      }
    }
  }

  private async identify(credentials: Credentials, token: TokenService, client: string, inUploadSession: boolean): Promise<Identity | { deny: Decided }> {
    switch (credentials.kind) {
      case 'none':
        return { subject: null };
      case 'malformed':
        return { deny: this.unauthorized({ subject: null }, token, [], 'malformed Authorization header') };
      case 'basic': {
        if (!this.identifier) return { deny: this.unauthorized({ subject: null }, token, [], 'invalid username or password') };
        const outcome = await this.identifier.login(credentials.user, credentials.password, client);
        if (outcome.ok) {
          const { subject, groups, token, claims, source } = outcome.identity;
          return { subject, groups, ...(token ? { token } : {}), ...(claims ? { oidc: { issuer: source, claims } } : {}) };
        }
        const failedLogin = { user: credentials.user, reason: outcome.message };
        switch (outcome.reason) {
          case 'limited':
            return { deny: { ok: false, code: 'TOOMANYREQUESTS', message: outcome.message, retryAfterSeconds: outcome.retryAfterSeconds, subject: null, failedLogin } };
          case 'unavailable':
            return { deny: { ok: false, code: 'SOURCE_UNAVAILABLE', message: outcome.message, retryAfterSeconds: 5, subject: null, failedLogin } };
          case 'invalid':
            return { deny: { ...this.unauthorized({ subject: null }, token, [], outcome.message), failedLogin } };
        }
      }
      case 'bearer': {
        if (!this.authority) return { deny: this.unauthorized({ subject: null }, token, [], 'bearer tokens are not accepted here; use Basic credentials') };
        const verified = this.authority.verify(credentials.token, token.service, inUploadSession ? UPLOAD_SESSION_GRACE_SECONDS : 0);
        if (!verified.ok) {
          return { deny: this.unauthorized({ subject: null }, token, [], `invalid token (${verified.reason})`, 'invalid_token') };
        }
        let grant: TokenGrant | undefined;
        if (verified.subject !== null) {
          const still = this.identifier ? this.identifier.recheck({ ...verified, subject: verified.subject }) : { ok: false as const, why: 'nobody logs in here' };
          if (!still.ok) return { deny: this.unauthorized({ subject: null }, token, [], `token no longer valid: ${still.why}; log in again`, 'invalid_token') };
          grant = still.token;
        }
        const oidc = verified.claims !== null && verified.source !== null ? { oidc: { issuer: verified.source, claims: verified.claims } } : {};
        return { subject: verified.subject, groups: verified.groups, tokenAccess: verified.access, ...(grant ? { token: grant } : {}), ...oidc };
      }
    }
  }

  private whyNot(caller: Caller, missing: Access[]): string {
    const reasons = missing.map((needed) => this.policy.decide(caller, needed)).flatMap((d) => (d.ok ? [] : [d.reason]));
    return [...new Set(reasons)].join('; ') || 'not in the registry token';
  }

  private permits(identity: Identity, caller: Caller, needed: Access): boolean {
    if (identity.tokenAccess && !covers(identity.tokenAccess, needed)) return false;
    return this.policy.decide(caller, needed).ok;
  }

  /**
   * A token that lacks a scope the caller may have gets `insufficient_scope`: the client fetches a
   * better token. (Without `error=` containerd 1.6 retries a body-carrying request for ever.) A
   * caller without any token gets the plain challenge (no error code, RFC 6750): that is what
   * makes it fetch its first token.
   */
  private unauthorized(identity: Identity, token: TokenService, scopes: Access[], message: string, error?: 'invalid_token'): Decided & { ok: false } {
    const challenge =
      this.auth.challenge === 'basic' || !this.authority
        ? basicChallenge(this.auth.realm)
        : bearerChallenge({
            realm: token.realm,
            service: token.service,
            scope: scopes.length ? scopes.map(formatScope) : undefined,
            error: error ?? (identity.tokenAccess && scopes.length ? 'insufficient_scope' : undefined),
          });
    return { ok: false, code: 'UNAUTHORIZED', message, challenge, subject: identity.subject };
  }
}

function describeAccess(a: Access): string {
  if (a.type === 'registry') return 'list repositories';
  if (a.actions.includes('push')) return `push to ${a.name}`;
  if (a.actions.includes('delete')) return `delete from ${a.name}`;
  return `pull from ${a.name}`;
}
