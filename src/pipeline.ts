import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import type { Config } from './config/types.js';
import type { Logger } from './observe/logger.js';
import type { AuthGate, TokenService } from './auth/gate.js';
import { parseAuthorization } from './auth/credentials.js';
import { answerTokenRequest } from './auth/token-endpoint.js';
import type { TokenAuthority } from './auth/token.js';
import type { UserStore } from './auth/users.js';
import { PeerTrust, type ClientView } from './proxy/client-view.js';
import { prepareUpstreamHeaders } from './proxy/headers.js';
import { sendRegistryError } from './proxy/errors.js';
import { userAgentBlocker } from './proxy/user-agents.js';
import type { ForwardOutcome, Forwarder } from './proxy/forward.js';
import type { ResponseCache, UpstreamTap } from './cache/response-cache.js';

export interface PipelineDeps {
  config: Config;
  logger: Logger;
  gate: AuthGate;
  users: UserStore | null;
  /** Null when the proxy issues no tokens (auth "none" or challenge "basic"). */
  authority: TokenAuthority | null;
  forwarder: Forwarder;
  /** Null when `cache.ttlSeconds` is 0. */
  cache: ResponseCache | null;
  readiness: () => Promise<string[]>;
}

/** One request as it passes through: what the access log line is made of. */
interface Exchange {
  id: string;
  req: IncomingMessage;
  res: ServerResponse;
  started: bigint;
  pathname: string;
  query: URLSearchParams;
  view: ClientView | null;
  subject: string | null;
  outcome: ForwardOutcome;
  socketBytes: { read: number; written: number };
}

/**
 * The path of every request on the main listener, top to bottom:
 * accept → (health | token) → block old clients → identify + authorize → (cache) → forward → log.
 */
export function createPipeline(deps: PipelineDeps): RequestListener {
  const { config, logger, gate, forwarder, cache } = deps;
  const trust = new PeerTrust(config.trustedProxies);
  const isBlocked = userAgentBlocker(config.blockUserAgents);
  const issuesTokens = deps.authority !== null;
  const idPrefix = randomBytes(3).toString('hex');
  let sequence = 0;

  const accept = (req: IncomingMessage, res: ServerResponse): Exchange | null => {
    const url = req.url ?? '';
    const queryAt = url.indexOf('?');
    const x: Exchange = {
      id: `${idPrefix}-${(++sequence).toString(36)}`,
      req,
      res,
      started: process.hrtime.bigint(),
      pathname: queryAt === -1 ? url : url.slice(0, queryAt),
      query: new URLSearchParams(queryAt === -1 ? '' : url.slice(queryAt + 1)),
      view: trust.view(req),
      subject: null,
      outcome: {},
      socketBytes: { read: req.socket.bytesRead, written: req.socket.bytesWritten },
    };
    res.once('close', () => logExchange(logger, x));
    if (!x.pathname.startsWith('/')) {
      sendRegistryError(res, 400, 'BAD_REQUEST', 'request target must be a path');
      return null;
    }
    if (!x.view) {
      sendRegistryError(res, 400, 'BAD_REQUEST', 'missing or malformed Host header');
      return null;
    }
    return x;
  };

  const tokenService = (view: ClientView): TokenService => ({
    realm: config.auth.tokenRealm ?? `${view.scheme}://${view.host}/token`,
    service: config.auth.tokenService ?? view.host,
  });

  const route = async (x: Exchange & { view: ClientView }): Promise<void> => {
    const { req, res, pathname } = x;
    if (pathname === '/healthz') return sendJson(res, 200, { status: 'ok' });
    if (pathname === '/readyz') {
      const reasons = await deps.readiness();
      return sendJson(res, reasons.length ? 503 : 200, reasons.length ? { status: 'unready', reasons } : { status: 'ready' });
    }
    const isApi = pathname === '/v2' || pathname.startsWith('/v2/');
    const isToken = pathname === '/token' && issuesTokens;
    if (!isApi && !isToken) return sendRegistryError(res, 404, 'NOT_FOUND', 'not found: the registry API lives under /v2/');
    if (isBlocked(req.headers['user-agent'])) return sendRegistryError(res, 404, 'UNSUPPORTED', 'this client is too old for the registry v2 API');

    if (isToken) return answerToken(x);

    const verdict = await gate.check(req.method ?? 'GET', pathname, x.query, req.headers, tokenService(x.view));
    x.subject = verdict.subject;
    if (!verdict.allow) {
      const headers: Record<string, string> = {};
      if (verdict.challenge) headers['www-authenticate'] = verdict.challenge;
      if (verdict.retryAfterSeconds) headers['retry-after'] = String(verdict.retryAfterSeconds);
      return sendRegistryError(res, verdict.status, verdict.code, verdict.message, headers);
    }
    let tap: UpstreamTap | undefined;
    const plan = cache?.plan(req.method ?? 'GET', pathname, req.headers);
    if (cache && plan?.kind === 'read') {
      tap = (await cache.serve(plan, res)) ?? undefined;
      x.outcome.cache = tap ? 'miss' : 'hit';
      if (!tap) return;
    } else if (cache && plan?.kind === 'write') {
      tap = cache.invalidateAround(plan.repository, res);
    }
    prepareUpstreamHeaders(req.headers, x.view);
    forwarder.forward(req, res, x.outcome, tap);
  };

  const answerToken = async (x: Exchange & { view: ClientView }): Promise<void> => {
    if (x.req.method !== 'GET' && x.req.method !== 'HEAD') {
      // docker falls back to GET when the OAuth2 POST form is refused
      return sendRegistryError(x.res, 404, 'UNSUPPORTED', 'use GET /token (Docker token flow)');
    }
    const service = tokenService(x.view).service;
    const answer = await answerTokenRequest(x.query, parseAuthorization(x.req.headers.authorization), {
      mode: config.auth.mode,
      publicCatalog: config.auth.publicCatalog,
      users: deps.users!,
      authority: deps.authority!,
      expectedService: service,
    });
    x.subject = answer.subject;
    x.res.writeHead(answer.status, { ...answer.headers, 'content-length': Buffer.byteLength(answer.body) });
    x.res.end(x.req.method === 'HEAD' ? undefined : answer.body);
  };

  return (req, res) => {
    const x = accept(req, res);
    if (!x) return;
    route(x as Exchange & { view: ClientView }).catch((err: Error) => {
      logger.error({ id: x.id, err: { message: err.message, stack: err.stack } }, 'request failed inside the proxy');
      sendRegistryError(res, 500, 'UNAVAILABLE', 'internal proxy error; see the proxy log for request ' + x.id);
    });
  };
}

function sendJson(res: ServerResponse, status: number, body: object): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

function logExchange(logger: Logger, x: Exchange): void {
  const { req, res } = x;
  const durationMs = Number(process.hrtime.bigint() - x.started) / 1e6;
  logger.info(
    {
      id: x.id,
      method: req.method,
      path: x.pathname,
      status: res.headersSent ? res.statusCode : 0,
      completed: res.writableFinished,
      bytesIn: req.socket.bytesRead - x.socketBytes.read,
      bytesOut: req.socket.bytesWritten - x.socketBytes.written,
      durationMs: Math.round(durationMs * 10) / 10,
      user: x.subject,
      client: x.view?.clientIp,
      upstreamStatus: x.outcome.upstreamStatus,
      upstreamFailure: x.outcome.failure,
      cache: x.outcome.cache,
    },
    'request',
  );
}
