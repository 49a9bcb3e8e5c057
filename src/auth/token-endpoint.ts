/**
 * GET /token — the proxy as its own Docker token service.
 *
 * How real clients use it, and why the answers are what they are:
 * - `docker login` asks for a token with no scope, with the typed credentials: valid → 200 (login
 *   succeeds), wrong → 401 (login fails). This is the only place a wrong password is caught at
 *   login time, which is the point of the token flow.
 * - `docker pull` / skopeo without credentials ask anonymously with the pull scope. read-public:
 *   a pull token. private: 401 right here, so the client stops with "unauthorized: authentication
 *   required" instead of fetching a useless empty token and failing one round trip later; the
 *   same for a scope-less anonymous request, so `docker login` without credentials fails too.
 * - An authenticated caller asking more than it may have gets a token with less (the spec's
 *   "grant what you can"); the registry request it cannot make then ends in 401
 *   insufficient_scope / DENIED from the pipeline, which names the missing scope.
 * - `offline_token`, `client_id` and `account` are accepted and ignored: no refresh tokens are
 *   handed out, and the account is whoever the Basic credentials prove.
 */
import type { AuthMode } from '../config/types.js';
import { basicChallenge } from './challenge.js';
import { registryErrorBody, type RegistryErrorCode } from '../proxy/errors.js';
import type { Credentials } from './credentials.js';
import { intersect, policyFor, type Subject } from './policy.js';
import { mergeAccess, parseScope, type Access } from './scope.js';
import { MAX_TOKEN_LENGTH, type TokenAuthority } from './token.js';
import { VerifyBusyError } from './verify-pool.js';

export interface TokenEndpointContext {
  mode: AuthMode;
  publicCatalog: boolean;
  users: { verify(user: string, password: string): Promise<boolean> };
  authority: TokenAuthority;
  /** The service this proxy issues tokens for (its host name unless configured otherwise). */
  expectedService: string;
  /** Realm of the Basic challenge on a 401. */
  realm?: string;
}

export interface TokenResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** Who the token was issued to, for the access log; null for anonymous or refused callers. */
  subject: string | null;
}

/** docker asks 1–3 scopes (a cross-repository mount is 2); more is not a client we know. */
export const MAX_SCOPES = 16;
const DEFAULT_REALM = 'Registry realm';

const JSON_HEADERS = { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' };

export async function answerTokenRequest(
  query: URLSearchParams,
  credentials: Credentials,
  ctx: TokenEndpointContext,
): Promise<TokenResponse> {
  const services = query.getAll('service');
  if (services.length > 1) return failure(400, 'UNSUPPORTED', 'more than one service parameter');
  // A missing service is what hand-made curl requests look like; the token names ours anyway.
  if (services.length === 1 && services[0] !== ctx.expectedService) {
    return failure(400, 'UNSUPPORTED', `this token service is for "${ctx.expectedService}", not "${services[0]}"`);
  }

  const asked = askedAccess(query);
  if (asked === null) return failure(400, 'UNSUPPORTED', `too many scopes (at most ${MAX_SCOPES})`);

  const identified = await identify(credentials, ctx);
  if ('status' in identified) return identified;
  const subject = identified.subject;

  const policy = policyFor(ctx.mode, { publicCatalog: ctx.publicCatalog });
  const access = asked.map((a) => ({ ...a, actions: intersect(a.actions, policy.granted(subject, a)) }));
  const issued = ctx.authority.issue({ subject, service: ctx.expectedService, access });
  if (issued.token.length > MAX_TOKEN_LENGTH) return failure(400, 'UNSUPPORTED', 'the requested scopes do not fit in a token');

  return { status: 200, headers: { ...JSON_HEADERS }, body: JSON.stringify(issued), subject };
}

/**
 * POST /token is the OAuth2 form (password or refresh-token grant). Clients use it only when they
 * hold a refresh token for this host, which this service never hands out; a clear JSON 404 says
 * "not here" instead of an HTML page the client cannot parse.
 */
export function answerTokenPost(): TokenResponse {
  return failure(404, 'UNSUPPORTED', 'OAuth2 token requests are not supported; use GET /token with Basic credentials');
}

/** Scopes asked, merged per resource, unparseable ones dropped; null when there are too many to consider. */
export function askedAccess(query: URLSearchParams): Access[] | null {
  const raw = query.getAll('scope').flatMap((value) => value.split(' ').filter((s) => s !== ''));
  if (raw.length > MAX_SCOPES) return null;
  return mergeAccess(raw.map(parseScope).filter((a): a is Access => a !== null));
}

async function identify(credentials: Credentials, ctx: TokenEndpointContext): Promise<{ subject: Subject } | TokenResponse> {
  const realm = ctx.realm ?? DEFAULT_REALM;
  // No auth at all: credentials are neither needed nor checked.
  if (ctx.mode === 'none') return { subject: null };
  switch (credentials.kind) {
    case 'malformed':
      return unauthorized(realm, 'malformed Authorization header');
    case 'bearer':
      return unauthorized(realm, 'the token service takes Basic credentials, not a bearer token');
    case 'none':
      return ctx.mode === 'private' ? unauthorized(realm, 'authentication required') : { subject: null };
    case 'basic':
      try {
        const ok = await ctx.users.verify(credentials.user, credentials.password);
        return ok ? { subject: credentials.user } : unauthorized(realm, 'invalid username or password');
      } catch (err) {
        if (err instanceof VerifyBusyError) {
          return { ...failure(429, 'TOOMANYREQUESTS', 'too many logins at once, retry shortly'), headers: { ...JSON_HEADERS, 'Retry-After': '1' } };
        }
        throw err;
      }
  }
}

function unauthorized(realm: string, message: string): TokenResponse {
  const response = failure(401, 'UNAUTHORIZED', message);
  response.headers['WWW-Authenticate'] = basicChallenge(realm);
  return response;
}

function failure(status: number, code: RegistryErrorCode, message: string): TokenResponse {
  return { status, headers: { ...JSON_HEADERS }, body: registryErrorBody(code, message), subject: null };
}
