import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import { createProxyServer } from 'http-proxy-3';
import { Readable } from 'node:stream';
import type { Socket } from 'node:net';
import type { Route } from '../registry/route.js';
import type { UpstreamTap } from '../cache/response-cache.js';
import type { Logger } from '../observe/logger.js';
import { createBlobRelay } from './blob-relay.js';
import { hasBody } from './body.js';
import { sendRegistryError } from '../registry/errors.js';
import { API_VERSION, API_VERSION_HEADER } from '../registry/api-version.js';

export interface ForwardOutcome {
  /** Status the registry answered with, if it answered. */
  upstreamStatus?: number;
  /** Why the proxy answered instead: refused, timeout, reset … */
  failure?: string;
  /** "hit": answered from the response cache; "miss": forwarded to fill it. */
  cache?: 'hit' | 'miss';
  /** The registry's Docker-Content-Digest (what a push stored), for the audit log. */
  contentDigest?: string;
  /** process.hrtime of the registry's status line, for the upstream latency metric. */
  answeredAt?: bigint;
}

export interface ForwardOptions {
  /** The route the pipeline authorized: what decides the way (blob relay or general). */
  route: Route;
  /** Sees the registry's answer before its body flows (response cache). */
  tap?: UpstreamTap;
  /** The request body, when the pipeline had to read it first (a protected tag's manifest). */
  body?: Buffer;
}

export interface Forwarder {
  /** Streams the exchange to the registry and back, with the request target byte for byte as it came. Headers must already be prepared. */
  forward(req: IncomingMessage, res: ServerResponse, outcome: ForwardOutcome, options: ForwardOptions): void;
  close(): void;
}

const UPSTREAM_BUFFER_BYTES = 128 * 1024;
const POOL_IDLE_MS = 5_000;

class UpstreamTimeout extends Error {
  readonly code = 'UPSTREAM_TIMEOUT';
}

/**
 * http-proxy-3 does the streaming (backpressure both ways, no buffering, and it aborts the
 * upstream request when the client goes away — http-proxy 1.18.1 no longer notices that on
 * Node 20). Around it we add what it leaves out: a keep-alive agent (its default forces
 * `Connection: close`), an idle timeout that we can tell apart from a refusal (502 vs 504), and
 * closing the client when the registry dies mid-body (otherwise the client hangs).
 */
export function createForwarder(opts: { upstream: string; timeoutSeconds: number; logger: Logger }): Forwarder {
  const target = new URL(opts.upstream);
  const AgentClass = target.protocol === 'https:' ? https.Agent : http.Agent;
  const agentOptions: http.AgentOptions & { highWaterMark: number } = {
    keepAlive: true,
    keepAliveMsecs: 1000,
    maxFreeSockets: 256,
    // A connection back in the pool closes after this long unused (a request's own socket timeout
    // replaces it while the request runs): a burst of requests must not leave up to
    // maxFreeSockets descriptors open for good.
    timeout: POOL_IDLE_MS,
    scheduling: 'lifo',
    // Passed on to each socket: room for a whole loop turn of request body while it is corked (see
    // coalesceWrites). 1 MiB saved ~10% proxy CPU per GiB uploaded but held ~40 MiB more with 32
    // uploads at once, memory the process then kept.
    highWaterMark: UPSTREAM_BUFFER_BYTES,
  };
  const agent = new AgentClass(agentOptions);
  const timeoutMs = opts.timeoutSeconds * 1000;
  const outcomes = new WeakMap<IncomingMessage, ForwardOutcome>();
  const taps = new WeakMap<IncomingMessage, UpstreamTap>();

  // A URL object, not the string: http-proxy-3 would otherwise parse the target again on every request.
  // toProxy: the request target goes out as the client sent it (joined to the upstream's path).
  // Without it http-proxy-3 rebuilds it with new URL(), which resolves dot segments, turns `\`
  // into `/` and drops `#…`: the registry would receive a path other than the one authorized.
  const proxy = createProxyServer({ target, agent, xfwd: false, changeOrigin: false, ws: false, toProxy: true });

  proxy.on('proxyReq', (proxyReq, req) => {
    if (hasBody(req)) coalesceWrites(req, proxyReq);
    proxyReq.setTimeout(timeoutMs, () => proxyReq.destroy(new UpstreamTimeout(`no answer from the registry for ${opts.timeoutSeconds}s`)));
  });

  proxy.on('proxyRes', (proxyRes, req, res) => {
    const outcome = outcomes.get(req);
    if (outcome) {
      outcome.answeredAt = process.hrtime.bigint();
      outcome.upstreamStatus = proxyRes.statusCode;
      const digest = proxyRes.headers['docker-content-digest'];
      if (typeof digest === 'string') outcome.contentDigest = digest;
    }
    // The registry's Connection header describes our pooled hop, not the client's.
    proxyRes.headers.connection = res.shouldKeepAlive ? 'keep-alive' : 'close';
    // The client would otherwise wait forever for the rest of a body that will never come.
    proxyRes.on('close', () => {
      if (!proxyRes.complete) res.destroy();
    });
    taps.get(req)?.(proxyRes);
  });

  const answerFailure = (res: ServerResponse, outcome: ForwardOutcome | undefined, code: string, message: string): void => {
    if (outcome) outcome.failure = code;
    if (res.headersSent || res.destroyed) {
      res.destroy();
      return;
    }
    if (code === 'UPSTREAM_TIMEOUT') {
      sendRegistryError(res, 'GATEWAY_TIMEOUT', `the registry did not answer within ${opts.timeoutSeconds}s (upstreamTimeoutSeconds)`);
    } else {
      // The registry's address and the cause are for the operator (the log line below), not for any caller.
      sendRegistryError(res, 'UNAVAILABLE', 'the registry is unavailable; try again in a moment');
    }
    opts.logger.warn({ err: { code, message }, upstream: target.host }, 'upstream request failed');
  };

  proxy.on('error', (err, req, res) => {
    const outcome = outcomes.get(req as IncomingMessage);
    const code = (err as NodeJS.ErrnoException).code ?? 'EUNKNOWN';
    if (res instanceof http.ServerResponse) answerFailure(res, outcome, code, err.message);
    else if (outcome) outcome.failure = code;
  });

  const relay = createBlobRelay(target, timeoutMs);

  return {
    forward(req, res, outcome, { route, tap, body }) {
      outcomes.set(req, outcome);
      if (tap) taps.set(req, tap);
      // Set before the upstream answers so the registry's own value, when it sends one, wins.
      res.setHeader(API_VERSION_HEADER, API_VERSION);
      if (body) return void proxy.web(req, res, { buffer: Readable.from([body]) });
      if (relay && !tap && route.kind === 'repository' && (route.endpoint === 'blob' ? req.method === 'GET' : route.endpoint === 'upload' && (req.method === 'PATCH' || req.method === 'PUT'))) {
        const general = (): void => void proxy.web(req, res);
        const failed = (code: string): void =>
          answerFailure(res, outcome, code, code === 'UPSTREAM_TIMEOUT' ? `no answer from the registry for ${opts.timeoutSeconds}s` : 'the connection to the registry failed');
        return relay.relay(req, res, outcome, general, failed);
      }
      proxy.web(req, res);
    },
    close() {
      relay?.close();
      agent.destroy();
      proxy.close();
    },
  };
}

/**
 * The plaintext of a TLS read reaches us as 16 KiB chunks, each from its own callback, and Node
 * flushes a request's writes as each callback returns: every chunk was a write(2) to the registry
 * and a wake-up of its reader. Corked until the I/O phase of the loop turn is over, the chunks go
 * out as one writev of up to UPSTREAM_BUFFER_BYTES (bench: half the syscalls per GiB, 10–15% less
 * proxy CPU per GiB uploaded).
 *
 * The socket is corked, not the ClientRequest: from Node 22 a corked request merges chunked
 * writes into one chunk of its own making, and under a piped body that lost bytes (a 3 MB chunked
 * PATCH reached the registry 75 KB short; docker pushes failed with DIGEST_INVALID). Before the
 * agent has handed out a socket there is nothing to coalesce: Node queues the writes itself.
 */
function coalesceWrites(body: IncomingMessage, upstream: http.ClientRequest): void {
  let corked: Socket | null = null;
  const uncork = (): void => {
    corked?.uncork();
    corked = null;
  };
  body.prependListener('data', () => {
    if (corked || !upstream.socket) return;
    corked = upstream.socket;
    corked.cork();
    setImmediate(uncork);
  });
}
