import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import type { Config } from './config/types.js';
import type { Logger } from './observe/logger.js';
import type { AuthGate, FailedLogin, TokenService } from './auth/gate.js';
import type { Identifier } from './auth/identify.js';
import type { AccessPolicy } from './access/policy.js';
import type { ProtectedTags } from './access/protected-tags.js';
import type { Caller } from './access/rules.js';
import { parseAuthorization } from './auth/credentials.js';
import { answerTokenPost, answerTokenRequest, failure, type TokenEndpointContext, type TokenResponse } from './auth/token-endpoint.js';
import type { RefreshTokens } from './auth/refresh-tokens.js';
import type { TokenAuthority } from './auth/token.js';
import { answerTokensApi, API_BODY_LIMIT, isTokensPath } from './auth/access-tokens/api.js';
import type { TokenManager } from './auth/access-tokens/manage.js';
import { basicChallenge } from './auth/challenge.js';
import type { AuditEntry, AuditSink } from './audit/audit-log.js';
import { classifyRequest, type Route } from './registry/route.js';
import { bodyForm, FORM_BODY_LIMIT, registryParams, type BodyForm, type RegistryParams } from './registry/inputs.js';
import { sendRegistryError } from './registry/errors.js';
import { API_VERSION, API_VERSION_HEADER } from './registry/api-version.js';
import { isLoopback, PeerTrust, type ClientView } from './proxy/client-view.js';
import { prepareUpstreamHeaders } from './proxy/headers.js';
import { userAgentBlocker } from './proxy/user-agents.js';
import { hasBody, readBody } from './proxy/body.js';
import { clientTimeouts, limitBodyIdle } from './proxy/timeouts.js';
import { corsAnswer } from './proxy/cors.js';
import { hostMatcher, knownNames, MISDIRECTED_MESSAGE } from './proxy/known-hosts.js';
import { filteredCatalog, nextLink, pageSize } from './proxy/catalog.js';
import { pagedTags } from './proxy/tags.js';
import { guardDelete, guardManifestPut } from './proxy/tag-guard.js';
import type { RegistryQuestions } from './proxy/upstream-client.js';
import type { ForwardOutcome, Forwarder } from './proxy/forward.js';
import type { ResponseCache, UpstreamTap } from './cache/response-cache.js';
import type { Drain } from './lifecycle/drain.js';
import { routeClass, type AuthOutcome, type Metrics } from './observe/metrics.js';

export interface PipelineDeps {
  config: Config;
  logger: Logger;
  gate: AuthGate;
  policy: AccessPolicy;
  protectedTags: ProtectedTags;
  audit: AuditSink;
  /** Null with auth "none": nobody logs in. */
  identifier: Identifier | null;
  /** Null when the proxy issues no tokens (auth "none" or challenge "basic"). */
  authority: TokenAuthority | null;
  /** Null without a "tokens" identity source: /gate/v1/tokens is then not found. */
  tokens: TokenManager | null;
  /** Null when no refresh tokens are handed out (no token service, or `auth.refreshTokenDays` 0). */
  refresh?: RefreshTokens | null;
  forwarder: Forwarder;
  upstream: RegistryQuestions;
  /** Null when `cache.ttlSeconds` is 0. */
  cache: ResponseCache | null;
  /** Why the proxy should get no traffic; empty when ready. */
  readiness: () => Promise<string[]>;
  /** What works less well right now without stopping service (Redis away); /readyz stays 200. */
  degraded?: () => string[];
  /** Knows which connections a push still needs when the proxy stops (absent in table tests). */
  drain?: Drain;
  metrics?: Metrics;
}

/** One request as it passes through: what the access log and audit lines are made of. */
interface Exchange {
  id: string;
  req: IncomingMessage;
  res: ServerResponse;
  started: bigint;
  pathname: string;
  rawQuery: string;
  /** The query as our own endpoints (token, filtered catalog) read it. */
  query: URLSearchParams;
  /** The parameters as the registry reads them (query and form body), for /v2/ requests. */
  params: RegistryParams | null;
  view: ClientView | null;
  route: Route | null;
  subject: string | null;
  /** The access token the subject came with. */
  token?: string;
  /** The oidc source that verified the subject (a CI job). */
  issuer?: string;
  /** An access token created or revoked through /gate/v1/tokens. */
  managed?: { action: 'token-create' | 'token-revoke'; token: string; owner: string };
  /** The identity came with credentials or a token (a 401 to it is a refusal, not a challenge). */
  identified: boolean;
  failedLogin?: FailedLogin;
  outcome: ForwardOutcome;
  bytesAtStart: { read: number; written: number };
  /** Ends the in-flight count of a blob transfer (metrics). */
  transferDone?: () => void;
}

/** A token form or a protected manifest is read whole; nothing larger is either. */
const TOKEN_FORM_LIMIT = 16 * 1024;
const MANIFEST_LIMIT = 4 * 1024 * 1024;
const BODY_TIMEOUT_MS = 30_000;
/** A refused request's body up to this size is read before the answer (see settleBody). */
const REFUSED_BODY_LIMIT = 64 * 1024;
const REFUSED_BODY_TIMEOUT_MS = 5_000;

/**
 * The path of every request on the main listener, top to bottom:
 * accept → (health | token) → block old clients → route → identify + authorize →
 * (catalog | protected tags | cache) → forward → log + audit.
 */
export function createPipeline(deps: PipelineDeps): RequestListener {
  const { config, logger, gate, policy, forwarder, cache } = deps;
  const trust = new PeerTrust(config.trustedProxies);
  const isBlocked = userAgentBlocker(config.blockUserAgents);
  const isKnownHost = hostMatcher(knownNames(config));
  const issuesTokens = deps.authority !== null;
  const idPrefix = randomBytes(3).toString('hex');
  const timeouts = clientTimeouts(config);
  // The socket's counters include what it read ahead (a small body arrives with its headers), so
  // a request's bytes are counted from where the previous request on the connection ended.
  const countedUpTo = new WeakMap<Socket, { read: number; written: number }>();
  // Connections whose framing could not be trusted: Node parses pipelined requests ahead and
  // would hand us what was smuggled behind a refused one, so nothing more is read from them.
  const distrusted = new WeakSet<Socket>();
  let sequence = 0;

  const refuseFraming = (req: IncomingMessage, res: ServerResponse, message: string): void => {
    distrusted.add(req.socket);
    sendRegistryError(res, 'BAD_REQUEST', message, { connection: 'close' });
  };

  const accept = (req: IncomingMessage, res: ServerResponse): Exchange | null => {
    if (distrusted.has(req.socket)) {
      req.socket.destroy();
      return null;
    }
    const url = req.url ?? '';
    const queryAt = url.indexOf('?');
    const x: Exchange = {
      id: `${idPrefix}-${(++sequence).toString(36)}`,
      req,
      res,
      started: process.hrtime.bigint(),
      pathname: queryAt === -1 ? url : url.slice(0, queryAt),
      rawQuery: queryAt === -1 ? '' : url.slice(queryAt + 1),
      query: new URLSearchParams(queryAt === -1 ? '' : url.slice(queryAt + 1)),
      params: null,
      view: trust.view(req),
      route: null,
      subject: null,
      identified: false,
      outcome: {},
      bytesAtStart: countedUpTo.get(req.socket) ?? { read: 0, written: 0 },
    };
    res.once('close', () => finish(x));
    deps.drain?.admit(
      req,
      res,
      () => ({ method: req.method ?? '', path: x.pathname, client: x.view?.clientIp ?? req.socket.remoteAddress ?? '', user: x.subject }),
      () => (x.outcome.failure = 'SHUTDOWN'),
    );
    if (!x.pathname.startsWith('/')) {
      refuseFraming(req, res, 'request target must be a path');
      return null;
    }
    if (!x.view) {
      refuseFraming(req, res, 'missing or malformed Host header');
      return null;
    }
    // Judged here, before anything awaits: the next pipelined request is handed over as soon as
    // this handler yields. A body on a GET or HEAD means nothing to the registry, and a coding
    // other than plain chunked ("gzip, chunked") is framed differently by different readers:
    // both are how requests are smuggled past a front end.
    const method = req.method ?? 'GET';
    if ((method === 'GET' || method === 'HEAD') && hasBody(req)) {
      refuseFraming(req, res, `a ${method} request carries no body`);
      return null;
    }
    const coding = req.headers['transfer-encoding'];
    if (coding !== undefined && coding.trim().toLowerCase() !== 'chunked') {
      refuseFraming(req, res, 'only Transfer-Encoding: chunked is accepted');
      return null;
    }
    if (hasBody(req)) limitBodyIdle(req, res, timeouts, () => (x.outcome.failure = 'CLIENT_BODY_IDLE'));
    return x;
  };

  const tokenService = (view: ClientView): TokenService => ({
    realm: config.auth.tokenRealm ?? `${view.scheme}://${view.host}/token`,
    service: config.auth.tokenService ?? view.host,
  });

  /** While stopping, only the pushes under way go on (see Drain); true when this request was refused. */
  const refusedWhileStopping = (x: Exchange & { view: ClientView }, repository: string | null): boolean => {
    if (!deps.drain || deps.drain.continues(x.view.clientIp, repository)) return false;
    sendRegistryError(x.res, 'SHUTTING_DOWN', 'registry-gate is shutting down and takes no new work; retry in a moment', { connection: 'close', 'retry-after': '5' });
    return true;
  };

  const handle = async (x: Exchange & { view: ClientView }): Promise<void> => {
    const { req, res, pathname } = x;
    const method = req.method ?? 'GET';
    if (pathname === '/healthz') return sendJson(res, 200, { status: 'ok' });
    if (pathname === '/readyz') {
      // The reasons name internal addresses (the registry's, Redis's): for callers on this host only.
      const explain = isLoopback(x.view.clientIp);
      const reasons = await deps.readiness();
      if (reasons.length) return sendJson(res, 503, explain ? { status: 'unready', reasons } : { status: 'unready' });
      const degraded = deps.degraded?.() ?? [];
      return sendJson(res, 200, degraded.length ? (explain ? { status: 'degraded', reasons: degraded } : { status: 'degraded' }) : { status: 'ready' });
    }
    // After the probes, which address a pod by its IP: every other answer may carry URLs built from Host.
    if (!isKnownHost(x.view.host)) return sendRegistryError(res, 'MISDIRECTED', MISDIRECTED_MESSAGE);
    const isApi = pathname === '/v2' || pathname.startsWith('/v2/');
    const isToken = pathname === '/token' && issuesTokens;
    const isTokensApi = deps.tokens !== null && isTokensPath(pathname);
    if (!isApi && !isToken && !isTokensApi) return sendRegistryError(res, 'NOT_FOUND', 'not found: the registry API lives under /v2/');
    const cors = corsAnswer(config.cors.allowedOrigins, method, req.headers);
    if (cors.kind === 'refused') return sendRegistryError(res, 'DENIED', cors.reason);
    if (cors.kind === 'preflight') {
      res.writeHead(204, cors.headers);
      return void res.end();
    }
    if (cors.kind === 'headers') for (const [name, value] of Object.entries(cors.headers)) res.setHeader(name, value);
    if (isBlocked(req.headers['user-agent'])) return sendRegistryError(res, 'NOT_FOUND', 'this client is too old for the registry v2 API');

    if (isToken) {
      if (refusedWhileStopping(x, null)) return;
      return answerToken(x);
    }
    if (isTokensApi) {
      if (refusedWhileStopping(x, null)) return;
      return answerTokensRequest(x, deps.tokens!);
    }

    // The registry reads parameters from an urlencoded body too, and lets them win over the
    // query's: such a body is read first and authorized with the rest (see registry/inputs.ts).
    const form = bodyForm(method, req.headers['content-type']);
    let body: Buffer | undefined;
    if (form === 'urlencoded') {
      const read = await readBody(req, FORM_BODY_LIMIT, BODY_TIMEOUT_MS);
      if (!read.ok) {
        if (read.reason === 'too-large') return sendRegistryError(res, 'TOO_LARGE', `a form body is at most ${FORM_BODY_LIMIT} bytes; blobs and manifests are sent with their own media type`, { connection: 'close' });
        return void res.destroy();
      }
      body = read.body;
    }
    const params = registryParams(x.rawQuery, body ?? null);
    x.params = params;
    const route = classifyRequest(method, pathname, params);
    x.route = route;
    if (refusedWhileStopping(x, route.kind === 'repository' ? route.name : null)) return;
    const verdict = await gate.check(route, req.headers, tokenService(x.view), x.view.clientIp);
    x.subject = verdict.subject;
    x.token = verdict.ok ? verdict.caller.token?.name : verdict.token;
    x.issuer = verdict.ok ? verdict.caller.issuer : verdict.issuer;
    x.identified = verdict.presented;
    if (!verdict.ok) {
      x.failedLogin = verdict.failedLogin;
      const headers = body ? {} : await settleBody(req);
      if (verdict.challenge) headers['www-authenticate'] = verdict.challenge;
      if (verdict.retryAfterSeconds) headers['retry-after'] = String(verdict.retryAfterSeconds);
      return sendRegistryError(res, verdict.code, verdict.message, headers);
    }
    const unreadable = unreadableInput(form, params);
    if (unreadable !== null) return sendRegistryError(res, 'BAD_REQUEST', unreadable, body ? {} : await settleBody(req));
    if (route.kind === 'repository') deps.drain?.repositoryRequest(req, res, x.view.clientIp, route);

    // Filtered only for callers from whom some repository is hidden; the others (and every mode
    // without `access`) get the registry's own answer and pagination.
    if (route.kind === 'catalog' && !policy.mayPullEverything(verdict.caller)) return answerCatalog(x, verdict.caller);
    if (route.kind === 'malformed') return sendRegistryError(res, route.code, route.message);
    if (route.kind === 'repository' && route.endpoint === 'tags' && method === 'GET' && (x.query.has('n') || x.query.has('last'))) return answerTags(x, route.name);

    const protectable = route.kind === 'repository' && (route.endpoint === 'manifest' || (route.endpoint === 'blob' && method === 'DELETE'));
    if (protectable && !deps.protectedTags.empty) {
      const guarded = await guardProtectedTags(x, route, verdict.caller, body);
      if (guarded === null) return;
      body = guarded.body;
    }

    let tap: UpstreamTap | undefined;
    const plan = cache?.plan(method, route, req.headers);
    if (cache && plan?.kind === 'read') {
      tap = (await cache.serve(plan, res)) ?? undefined;
      x.outcome.cache = tap ? 'miss' : 'hit';
      if (!tap) return;
    } else if (cache && plan?.kind === 'write') {
      tap = cache.invalidateAround(plan.repository, res);
    }
    prepareUpstreamHeaders(req.headers, x.view);
    if (deps.metrics && route.kind === 'repository') {
      if (route.endpoint === 'blob' && method === 'GET') x.transferDone = deps.metrics.transferStarted('download');
      else if (route.endpoint === 'upload' && hasBody(req)) x.transferDone = deps.metrics.transferStarted('upload');
    }
    forwarder.forward(req, res, x.outcome, { route, tap, body });
  };

  /**
   * A manifest PUT to a protected tag, or a manifest or blob DELETE where protected tags exist: asked of
   * the registry before anything is forwarded. Returns null when the request was answered here,
   * else the body it had to read (forwarded as read). `known`: the body when it was read before.
   */
  const guardProtectedTags = async (x: Exchange, route: Route & { kind: 'repository' }, caller: Caller, known: Buffer | undefined): Promise<{ body?: Buffer } | null> => {
    const { req, res } = x;
    if (req.method === 'PUT' && route.tag !== null) {
      const protection = deps.protectedTags.protecting(caller, route.name, route.tag);
      if (protection === null) return { body: known };
      const read = known ? ({ ok: true, body: known } as const) : await readBody(req, MANIFEST_LIMIT, BODY_TIMEOUT_MS);
      if (!read.ok) {
        if (read.reason === 'too-large') sendRegistryError(res, 'TOO_LARGE', `a manifest is at most ${MANIFEST_LIMIT} bytes`, { connection: 'close' });
        else res.destroy();
        return null;
      }
      const result = await guardManifestPut(deps.upstream, route.name, route.tag, read.body, protection);
      if (!result.ok) {
        sendRegistryError(res, result.code, result.message);
        return null;
      }
      return { body: read.body };
    }
    if (req.method === 'DELETE' && deps.protectedTags.guardsAny(caller, route.name)) {
      const target = route.tag !== null ? 'tag' : route.endpoint === 'blob' ? 'blob' : 'manifest';
      const result = await guardDelete(deps.upstream, deps.protectedTags, caller, route.name, route.reference, target);
      if (!result.ok) {
        sendRegistryError(res, result.code, result.message);
        return null;
      }
    }
    return { body: known };
  };

  const answerCatalog = async (x: Exchange, caller: Caller): Promise<void> => {
    const n = pageSize(x.query);
    if (n === null) return sendRegistryError(x.res, 'BAD_REQUEST', 'n must be a whole number');
    const page = await filteredCatalog(deps.upstream, n, x.query.get('last'), (name) => policy.mayPull(caller, name));
    if (!page.ok) return sendRegistryError(x.res, 'UNAVAILABLE', page.reason);
    const headers: Record<string, string> = { [API_VERSION_HEADER]: API_VERSION };
    if (page.next !== null) headers.link = nextLink('/v2/_catalog', n, page.next);
    sendJson(x.res, 200, { repositories: page.repositories }, headers);
  };

  const answerTags = async (x: Exchange, name: string): Promise<void> => {
    const n = pageSize(x.query);
    if (n === null) return sendRegistryError(x.res, 'BAD_REQUEST', 'n must be a whole number');
    const page = await pagedTags(deps.upstream, name, n, x.query.get('last'));
    if (!page.ok) {
      if (page.status === null) return sendRegistryError(x.res, 'UNAVAILABLE', 'the registry sent a tag list the proxy cannot read');
      x.res.writeHead(page.status, { 'content-type': page.contentType, 'content-length': Buffer.byteLength(page.body), [API_VERSION_HEADER]: API_VERSION });
      return void x.res.end(page.body);
    }
    const headers: Record<string, string> = { [API_VERSION_HEADER]: API_VERSION };
    if (page.next !== null) headers.link = nextLink(`/v2/${name}/tags/list`, n, page.next);
    sendJson(x.res, 200, { name: page.name, tags: page.tags }, headers);
  };

  const answerToken = async (x: Exchange & { view: ClientView }): Promise<void> => {
    const { req, res } = x;
    const ctx: TokenEndpointContext = {
      mode: config.auth.mode,
      policy,
      identifier: deps.identifier!,
      client: x.view.clientIp,
      authority: deps.authority!,
      expectedService: tokenService(x.view).service,
      realm: config.auth.realm,
      refresh: deps.refresh ?? null,
      onRefreshError: (err) => logger.warn({ err: err.message }, `refresh tokens: ${err.message}; docker logins go on without one (docker keeps the password)`),
    };
    let answer: TokenResponse;
    const credentials = parseAuthorization(req.headers.authorization);
    if (req.method === 'GET' || req.method === 'HEAD') {
      answer = await answerTokenRequest(x.query, credentials, ctx);
    } else if (req.method === 'POST') {
      const read = await readBody(req, TOKEN_FORM_LIMIT, BODY_TIMEOUT_MS);
      if (!read.ok && read.reason !== 'too-large') return void res.destroy();
      if (read.ok) answer = await answerTokenPost(new URLSearchParams(read.body.toString('utf8')), credentials, ctx);
      else {
        answer = failure('TOO_LARGE', `a token request is at most ${TOKEN_FORM_LIMIT} bytes`);
        answer.headers.connection = 'close';
      }
    } else {
      answer = { ...failure('UNSUPPORTED', 'use GET or POST /token'), headers: { allow: 'GET, HEAD, POST' } };
    }
    x.subject = answer.subject;
    x.token = answer.token;
    x.failedLogin = answer.failedLogin;
    x.identified = answer.subject !== null || answer.failedLogin !== undefined;
    res.writeHead(answer.status, { ...answer.headers, 'content-length': Buffer.byteLength(answer.body) });
    res.end(req.method === 'HEAD' ? undefined : answer.body);
  };

  /**
   * /gate/v1/tokens: a person's own password (Basic), through the identify chain and its limits
   * like any login; never a registry token nor an access token.
   */
  const answerTokensRequest = async (x: Exchange & { view: ClientView }, manager: TokenManager): Promise<void> => {
    const { req, res } = x;
    const method = req.method ?? 'GET';
    const challenge = { 'www-authenticate': basicChallenge(config.auth.realm) };
    const credentials = parseAuthorization(req.headers.authorization);
    if (credentials.kind !== 'basic' || !deps.identifier) {
      await settleBody(req);
      return sendRegistryError(res, 'UNAUTHORIZED', 'log in with your user name and password (Basic authentication) to manage your access tokens', challenge);
    }
    x.identified = true;
    const outcome = await deps.identifier.login(credentials.user, credentials.password, x.view.clientIp);
    if (!outcome.ok) {
      await settleBody(req);
      x.failedLogin = { user: credentials.user, reason: outcome.message };
      if (outcome.reason === 'limited') return sendRegistryError(res, 'TOOMANYREQUESTS', outcome.message, { 'retry-after': String(outcome.retryAfterSeconds) });
      if (outcome.reason === 'unavailable') return sendRegistryError(res, 'SOURCE_UNAVAILABLE', outcome.message, { 'retry-after': '5' });
      return sendRegistryError(res, 'UNAUTHORIZED', outcome.message, challenge);
    }
    const { identity } = outcome;
    x.subject = identity.subject;
    if (identity.token) {
      x.token = identity.token.name;
      await settleBody(req);
      return sendRegistryError(res, 'DENIED', 'an access token cannot manage access tokens; log in with your own password');
    }
    let body: Buffer | null = null;
    if (method === 'POST') {
      const read = await readBody(req, API_BODY_LIMIT, BODY_TIMEOUT_MS);
      if (!read.ok) {
        if (read.reason === 'too-large') return sendRegistryError(res, 'TOO_LARGE', `a token request is at most ${API_BODY_LIMIT} bytes`, { connection: 'close' });
        return void res.destroy();
      }
      body = read.body;
    } else await settleBody(req);
    const actor = { user: identity.subject, groups: policy.caller(identity.subject, identity.groups).groups };
    const answer = await answerTokensApi(method, x.pathname, body, actor, manager);
    if (!answer.ok) return sendRegistryError(res, answer.code, answer.message, answer.headers);
    x.managed = answer.audit;
    if (answer.body === null) {
      res.writeHead(answer.status, { 'cache-control': 'no-store' });
      return void res.end();
    }
    sendJson(res, answer.status, answer.body);
  };

  const finish = (x: Exchange): void => {
    const socket = x.req.socket;
    const bytes = { read: socket.bytesRead, written: socket.bytesWritten };
    countedUpTo.set(socket, bytes);
    const bytesIn = bytes.read - x.bytesAtStart.read;
    const bytesOut = bytes.written - x.bytesAtStart.written;
    logExchange(logger, x, bytesIn, bytesOut);
    x.transferDone?.();
    if (deps.metrics) {
      const route = routeClass(x.pathname, x.route);
      deps.metrics.observe({
        route,
        method: x.req.method ?? '',
        status: x.res.headersSent ? x.res.statusCode : 0,
        seconds: Number(process.hrtime.bigint() - x.started) / 1e9,
        upstreamSeconds: x.outcome.answeredAt !== undefined ? Number(x.outcome.answeredAt - x.started) / 1e9 : undefined,
        bytesIn,
        bytesOut,
        auth: authOutcome(x),
        cache: x.outcome.cache,
        tokenIssued: route === 'token' && x.res.statusCode === 200,
      });
    }
    const entry = auditEntry(x, bytesIn);
    if (entry) deps.audit.record(entry);
  };

  /** For the auth metric: how this request's credentials or token fared, if it had any. */
  const authOutcome = (x: Exchange): AuthOutcome | undefined => {
    if (x.failedLogin) {
      if (x.res.statusCode === 429) return 'limited';
      if (x.res.statusCode === 503) return 'unavailable';
      return deps.identifier?.knows(x.failedLogin.user) ? 'bad_password' : 'unknown_user';
    }
    if (!x.identified) return undefined;
    return x.res.statusCode === 401 ? 'token_refused' : 'ok';
  };

  return (req, res) => {
    const x = accept(req, res);
    if (!x) return;
    handle(x as Exchange & { view: ClientView }).catch((err: Error) => {
      logger.error({ id: x.id, err: { message: err.message, stack: err.stack } }, 'request failed inside the proxy');
      sendRegistryError(res, 'UNKNOWN', 'internal proxy error; see the proxy log for request ' + x.id);
    });
  };
}

/**
 * Changes (pushes, uploads, mounts, deletes — allowed or not) and failed logins. A 401 to a
 * caller that sent no credentials is the challenge every client gets first, not an event.
 */
function auditEntry(x: Exchange, bytesIn: number): AuditEntry | null {
  const status = x.res.headersSent ? x.res.statusCode : 0;
  const base = {
    user: x.subject,
    ...(x.token !== undefined ? { accessToken: x.token } : {}),
    ...(x.issuer !== undefined ? { oidc: x.issuer } : {}),
    client: x.view?.clientIp ?? null,
    status,
    request: x.id,
  };
  if (x.failedLogin !== undefined) return { ...base, event: 'login-failed', action: 'login', user: x.failedLogin.user, reason: x.failedLogin.reason };
  if (x.managed !== undefined) return { ...base, event: 'token', action: x.managed.action, accessToken: x.managed.token, owner: x.managed.owner };
  const route = x.route;
  if (route === null || (status === 401 && !x.identified)) return null;
  const method = x.req.method ?? '';
  const refusedWrite = status >= 400 && method !== 'GET' && method !== 'HEAD' && method !== 'OPTIONS';
  // A write the gate could not even classify is the trace an attacker's probing leaves.
  if (route.kind !== 'repository') return refusedWrite ? { ...base, event: 'change', action: 'write', method, path: x.req.url ?? '' } : null;
  const change = { ...base, event: 'change' as const, repository: route.name, bytes: bytesIn };
  const digest = x.outcome.contentDigest;
  if (method === 'PUT' && route.endpoint === 'manifest') {
    return { ...change, action: 'push', ...(route.tag !== null ? { tag: route.tag } : {}), digest: digest ?? (route.tag === null ? route.reference : undefined) };
  }
  // What the registry acted on: the parameters as it reads them, the form body's first.
  const params = x.params;
  if (method === 'PUT' && route.endpoint === 'upload') return { ...change, action: 'upload', digest: digest ?? params?.value('digest') };
  if (method === 'POST' && route.endpoint === 'upload' && params?.value('mount') !== undefined) {
    return { ...change, action: 'mount', digest: params.value('mount'), from: params.value('from') };
  }
  if (method === 'DELETE') {
    return { ...change, action: 'delete', ...(route.tag !== null ? { tag: route.tag } : { digest: route.reference }) };
  }
  // Starting or feeding an upload is recorded when it is refused; allowed, the finishing PUT is.
  if (refusedWrite) return { ...change, action: route.endpoint === 'upload' ? 'upload' : 'write', method };
  return null;
}

/** Why the registry could read this request otherwise than the gate did; null when it cannot. */
function unreadableInput(form: BodyForm, params: RegistryParams): string | null {
  if (form === 'multipart') return 'a multipart form body is not accepted on the registry API: the registry would read parameters from it';
  if (form === 'unreadable') return 'the Content-Type header must be plain ASCII';
  if (params.conflict !== null) return `the parameter "${params.conflict}" is given more than once with different values (query and form body count alike)`;
  return null;
}

/**
 * A client still sending the body of a refused request (containerd streams a manifest PUT) reads
 * the answer only after its write: answered first, it sees "read/write on closed pipe" instead
 * of the refusal. So a small body is read and dropped first; a large one is not read at all and
 * the connection closes after the answer, so a refused upload costs nothing.
 */
async function settleBody(req: IncomingMessage): Promise<Record<string, string>> {
  if (!hasBody(req)) return {};
  const read = await readBody(req, REFUSED_BODY_LIMIT, REFUSED_BODY_TIMEOUT_MS);
  return read.ok ? {} : { connection: 'close' };
}

function sendJson(res: ServerResponse, status: number, body: object, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

function logExchange(logger: Logger, x: Exchange, bytesIn: number, bytesOut: number): void {
  const { req, res } = x;
  const durationMs = Number(process.hrtime.bigint() - x.started) / 1e6;
  logger.info(
    {
      id: x.id,
      method: req.method,
      path: x.pathname,
      status: res.headersSent ? res.statusCode : 0,
      completed: res.writableFinished,
      bytesIn,
      bytesOut,
      durationMs: Math.round(durationMs * 10) / 10,
      user: x.subject,
      accessToken: x.token,
      client: x.view?.clientIp,
      upstreamStatus: x.outcome.upstreamStatus,
      failure: x.outcome.failure,
      cache: x.outcome.cache,
    },
    'request',
  );
}
