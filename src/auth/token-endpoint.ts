/**
 * GET /token and POST /token — the proxy as its own Docker token service.
 *
 * How real clients use it, and why the answers are what they are:
 * - `docker login` asks for a token with no scope, with the typed credentials: valid → 200 (login
 *   succeeds), wrong → 401 (login fails). This is the only place a wrong password is caught at
 *   login time, which is the point of the token flow.
 * - Callers without credentials get a token with what anonymous callers may have — in `private`
 *   mode nothing. The `/v2/` request then fails at once with `insufficient_scope` and the
 *   proxy's message. A 401 here instead made docker retry a push for 50 s and podman print
 *   "invalid username/password" though no password was given (Docker Hub answers the same way).
 * - An authenticated caller asking more than it may have gets a token with less (the spec's
 *   "grant what you can"); the request it cannot make then ends in 401 insufficient_scope.
 * - POST is the OAuth2 form that containerd (ctr, BuildKit, nerdctl) always uses when it has
 *   credentials (`grant_type=password`); it falls back to GET only on 400/401/404/405.
 * - `offline_token=true` (docker login) on GET, `access_type=offline` on a POST password grant:
 *   the answer carries a `refresh_token` (auth/refresh-tokens.ts), which docker keeps instead of
 *   the password and brings back as `grant_type=refresh_token`. The identity is asked for again
 *   on every use; a refresh token that no longer stands for anyone gets 401 and docker says to
 *   log in again.
 * - `client_id` and `account` are accepted and ignored: the account is whoever the credentials
 *   prove.
 */
import type { AuthMode } from '../config/types.js';
import type { AccessPolicy } from '../access/policy.js';
import type { FailedLogin } from './gate.js';
import type { Identifier } from './identify.js';
import type { Identity } from './sources/source.js';
import { basicChallenge } from './challenge.js';
import { registryErrorBody, statusOf, type RegistryErrorCode } from '../registry/errors.js';
import type { Credentials } from './credentials.js';
import { mergeAccess, parseScope, type Access } from '../registry/scope.js';
import { MAX_TOKEN_LENGTH, type TokenAuthority } from './token.js';
import type { RefreshTokens } from './refresh-tokens.js';

export interface TokenEndpointContext {
  mode: AuthMode;
  policy: AccessPolicy;
  /** The identify chain: every secret is checked there (limits included). */
  identifier: Identifier;
  /** The caller's address (login limits count per client). */
  client: string;
  authority: TokenAuthority;
  /** The service this proxy issues tokens for (its host name unless configured otherwise). */
  expectedService: string;
  /** Realm of the Basic challenge on a 401 (`auth.realm`). */
  realm: string;
  /** Null: no refresh tokens (`auth.refreshTokenDays` 0). */
  refresh: RefreshTokens | null;
  /** A refresh token that could not be stored or read (Redis away): the login goes on without one. */
  onRefreshError?: (err: Error) => void;
}

export interface TokenResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** Who the token was issued to, for the access log; null for anonymous or refused callers. */
  subject: string | null;
  /** The identity source that verified the subject. */
  source?: string;
  /** The access token the subject logged in with. */
  token?: string;
  /** A login that failed or was refused (for the audit log); never the password. */
  failedLogin?: FailedLogin;
}

/** docker asks 1–3 scopes (a cross-repository mount is 2); more is not a client we know. */
export const MAX_SCOPES = 16;

const JSON_HEADERS = { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' };

export async function answerTokenRequest(
  query: URLSearchParams,
  credentials: Credentials,
  ctx: TokenEndpointContext,
  offline = query.get('offline_token') === 'true',
): Promise<TokenResponse> {
  const asked = checkRequest(query, ctx);
  if (!Array.isArray(asked)) return asked;
  const identified = await identify(credentials, ctx);
  if (identified !== null && 'status' in identified) return identified;
  let refreshToken: string | undefined;
  if (identified !== null && offline && ctx.refresh) {
    try {
      refreshToken = await ctx.refresh.issue(identified);
    } catch (err) {
      ctx.onRefreshError?.(err as Error);
    }
  }
  return issueFor(identified, asked, ctx, refreshToken);
}

/** Service and scopes of a token request: what is asked, or the answer that refuses it. */
function checkRequest(query: URLSearchParams, ctx: TokenEndpointContext): Access[] | TokenResponse {
  const services = query.getAll('service');
  if (services.length > 1) return failure('BAD_REQUEST', 'more than one service parameter');
  // A missing service is what hand-made curl requests look like; the token names ours anyway.
  if (services.length === 1 && services[0] !== ctx.expectedService) {
    return failure('BAD_REQUEST', `this token service is for "${ctx.expectedService}", not "${services[0]}"`);
  }
  const asked = askedAccess(query);
  if (asked === null) return failure('BAD_REQUEST', `too many scopes (at most ${MAX_SCOPES})`);
  return asked;
}

/** The registry token for this identity (null: anonymous) with what it asked and may have. */
function issueFor(identified: Identity | null, asked: Access[], ctx: TokenEndpointContext, refreshToken?: string): TokenResponse {
  const subject = identified?.subject ?? null;

  const oidc = identified?.claims ? { issuer: identified.source, claims: identified.claims } : undefined;
  const caller = ctx.policy.caller(subject, identified?.groups, identified?.token, oidc);
  const access = asked.map((a) => ({ ...a, actions: ctx.policy.allowed(caller, a) }));
  const issued = ctx.authority.issue({
    subject,
    service: ctx.expectedService,
    access,
    ...(identified
      ? {
          source: identified.source,
          groups: identified.groups,
          ...(identified.stamp !== null ? { stamp: identified.stamp } : {}),
          ...(identified.token ? { token: identified.token.name } : {}),
          ...(identified.claims ? { claims: ctx.policy.carriedClaims(identified.claims) } : {}),
        }
      : {}),
  });
  if (issued.token.length > MAX_TOKEN_LENGTH) return failure('BAD_REQUEST', 'the requested scopes do not fit in a token');

  return {
    status: 200,
    headers: { ...JSON_HEADERS },
    body: JSON.stringify(refreshToken === undefined ? issued : { ...issued, refresh_token: refreshToken }),
    subject,
    ...(identified ? { source: identified.source } : {}),
    ...(identified?.token ? { token: identified.token.name } : {}),
  };
}

/**
 * POST /token with an OAuth2 form (`grant_type=password&username=…&password=…&scope=…&service=…`):
 * the same answer as GET with those credentials. `header`: the request's Authorization, which
 * counts exactly as on GET when the form carries no credentials; both at once are refused, since
 * either reading would ignore a credential the caller sent.
 */
export async function answerTokenPost(form: URLSearchParams, header: Credentials, ctx: TokenEndpointContext): Promise<TokenResponse> {
  const grant = form.get('grant_type');
  if (grant === 'refresh_token' && ctx.refresh) return answerRefresh(form, ctx.refresh, ctx);
  if (grant !== 'password') {
    const supported = ctx.refresh ? '"password" or "refresh_token"' : '"password" (refresh tokens are off: auth.refreshTokenDays is 0)';
    return failure('BAD_REQUEST', `grant_type "${grant ?? ''}" is not supported; use ${supported}, or GET /token`);
  }
  const user = form.get('username') ?? '';
  const password = form.get('password') ?? '';
  const inForm = user !== '' || password !== '';
  if (inForm && header.kind !== 'none') return failure('BAD_REQUEST', 'credentials both in the Authorization header and in the form; send them once');
  const credentials: Credentials = inForm ? { kind: 'basic', user, password } : header;
  const query = new URLSearchParams();
  for (const service of form.getAll('service')) query.append('service', service);
  for (const scope of form.getAll('scope')) query.append('scope', scope);
  return answerTokenRequest(query, credentials, ctx, form.get('access_type') === 'offline');
}

/**
 * `grant_type=refresh_token` (docker with a stored identity token): the identity it stands for,
 * asked for again, gets a registry token; the same refresh token is handed back (docker keeps
 * using the one it has; a new one per request would only multiply records).
 */
async function answerRefresh(form: URLSearchParams, refresh: RefreshTokens, ctx: TokenEndpointContext): Promise<TokenResponse> {
  const query = new URLSearchParams();
  for (const service of form.getAll('service')) query.append('service', service);
  for (const scope of form.getAll('scope')) query.append('scope', scope);
  const asked = checkRequest(query, ctx);
  if (!Array.isArray(asked)) return asked;
  const secret = form.get('refresh_token') ?? '';
  let redeemed;
  try {
    redeemed = await refresh.redeem(secret);
  } catch (err) {
    ctx.onRefreshError?.(err as Error);
    const refused = failure('UNAVAILABLE', 'refresh tokens cannot be read right now; try again shortly');
    refused.headers['Retry-After'] = '5';
    return refused;
  }
  if (!redeemed.ok) return { ...unauthorized(ctx.realm, redeemed.message), failedLogin: { user: '(refresh token)', reason: redeemed.message } };
  const renewed = await ctx.identifier.renew(redeemed.held);
  if (!renewed.ok) {
    const failedLogin = { user: redeemed.held.token ?? redeemed.held.subject, reason: renewed.message };
    if (renewed.reason === 'unavailable') {
      const refused = failure('SOURCE_UNAVAILABLE', renewed.message);
      refused.headers['Retry-After'] = '5';
      return { ...refused, failedLogin };
    }
    return { ...unauthorized(ctx.realm, `refresh token no longer valid: ${renewed.message}; log in again`), failedLogin };
  }
  return issueFor(renewed.identity, asked, ctx, secret);
}

/** Scopes asked, merged per resource, unparseable ones dropped; null when there are too many to consider. */
export function askedAccess(query: URLSearchParams): Access[] | null {
  const raw = query.getAll('scope').flatMap((value) => value.split(' ').filter((s) => s !== ''));
  if (raw.length > MAX_SCOPES) return null;
  return mergeAccess(raw.map(parseScope).filter((a): a is Access => a !== null));
}

/** The verified identity, null for an anonymous caller, or the answer that refuses the request. */
async function identify(credentials: Credentials, ctx: TokenEndpointContext): Promise<Identity | null | TokenResponse> {
  const realm = ctx.realm;
  // No auth at all: credentials are neither needed nor checked.
  if (ctx.mode === 'none') return null;
  switch (credentials.kind) {
    case 'malformed':
      return unauthorized(realm, 'malformed Authorization header');
    case 'bearer':
      return unauthorized(realm, 'the token service takes Basic credentials, not a bearer token');
    case 'none':
      return null;
    case 'basic': {
      const outcome = await ctx.identifier.login(credentials.user, credentials.password, ctx.client);
      if (outcome.ok) return outcome.identity;
      const failedLogin = { user: credentials.user, reason: outcome.message };
      switch (outcome.reason) {
        case 'limited': {
          const refused = failure('TOOMANYREQUESTS', outcome.message);
          refused.headers['Retry-After'] = String(outcome.retryAfterSeconds);
          return { ...refused, failedLogin };
        }
        case 'unavailable': {
          // Not a 401: docker would take it for a wrong password. Nobody is counted or locked out.
          const refused = failure('SOURCE_UNAVAILABLE', outcome.message);
          refused.headers['Retry-After'] = '5';
          return { ...refused, failedLogin };
        }
        case 'invalid':
          return { ...unauthorized(realm, outcome.message), failedLogin };
      }
    }
  }
}

function unauthorized(realm: string, message: string): TokenResponse {
  const response = failure('UNAUTHORIZED', message);
  response.headers['WWW-Authenticate'] = basicChallenge(realm);
  return response;
}

export function failure(code: RegistryErrorCode, message: string): TokenResponse {
  return { status: statusOf(code), headers: { ...JSON_HEADERS }, body: registryErrorBody(code, message), subject: null };
}
