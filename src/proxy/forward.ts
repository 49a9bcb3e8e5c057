import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import { createProxyServer } from 'http-proxy-3';
import type { Logger } from '../observe/logger.js';
import { sendRegistryError } from './errors.js';
import { API_VERSION, API_VERSION_HEADER } from './headers.js';

export interface ForwardOutcome {
  /** Status the registry answered with, if it answered. */
  upstreamStatus?: number;
  /** Why the proxy answered instead: refused, timeout, reset … */
  failure?: string;
}

export interface Forwarder {
  /** Streams the exchange to the registry and back. Headers must already be prepared. */
  forward(req: IncomingMessage, res: ServerResponse, outcome: ForwardOutcome): void;
  close(): void;
}

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
  const agent = new AgentClass({ keepAlive: true, keepAliveMsecs: 1000, maxFreeSockets: 256, scheduling: 'lifo', ...(process.env.RG_HWM ? { highWaterMark: Number(process.env.RG_HWM) } : {}) });
  const timeoutMs = opts.timeoutSeconds * 1000;
  const outcomes = new WeakMap<IncomingMessage, ForwardOutcome>();

  const proxy = createProxyServer({ target: opts.upstream, agent, xfwd: false, changeOrigin: false, ws: false });

  proxy.on('proxyReq', (proxyReq, req) => {
    if (process.env.RG_COALESCE) coalescePerTick(req, proxyReq);
    proxyReq.setTimeout(timeoutMs, () => proxyReq.destroy(new UpstreamTimeout(`no answer from the registry for ${opts.timeoutSeconds}s`)));
  });

  proxy.on('proxyRes', (proxyRes, req, res) => {
    const outcome = outcomes.get(req);
    if (outcome) outcome.upstreamStatus = proxyRes.statusCode;
    // The registry's Connection header describes our pooled hop, not the client's.
    proxyRes.headers.connection = res.shouldKeepAlive ? 'keep-alive' : 'close';
    if (process.env.RG_COALESCE_DOWN) coalescePerTick(proxyRes, res as http.ServerResponse);
    // The client would otherwise wait forever for the rest of a body that will never come.
    proxyRes.on('close', () => {
      if (!proxyRes.complete) res.destroy();
    });
  });

  proxy.on('error', (err, req, res) => {
    const outcome = outcomes.get(req as IncomingMessage);
    const code = (err as NodeJS.ErrnoException).code ?? 'EUNKNOWN';
    if (outcome) outcome.failure = code;
    if (!(res instanceof http.ServerResponse)) return;
    if (res.headersSent || res.destroyed) {
      res.destroy();
      return;
    }
    if (code === 'UPSTREAM_TIMEOUT') {
      sendRegistryError(res, 504, 'UNAVAILABLE', `the registry did not answer within ${opts.timeoutSeconds}s (upstreamTimeoutSeconds)`);
    } else {
      sendRegistryError(res, 502, 'UNAVAILABLE', `the registry at ${target.host} cannot be reached (${code})`);
    }
    opts.logger.warn({ err: { code, message: err.message }, upstream: target.host }, 'upstream request failed');
  });

  return {
    forward(req, res, outcome) {
      outcomes.set(req, outcome);
      // Set before the upstream answers so the registry's own value, when it sends one, wins.
      res.setHeader(API_VERSION_HEADER, API_VERSION);
      proxy.web(req, res);
    },
    close() {
      agent.destroy();
      proxy.close();
    },
  };
}

function coalescePerTick(source: NodeJS.ReadableStream & { prependListener: (e: 'data', l: () => void) => unknown }, sink: { cork(): void; uncork(): void }): void {
  let corked = false;
  const uncork = (): void => {
    corked = false;
    sink.uncork();
  };
  source.prependListener('data', () => {
    if (corked) return;
    corked = true;
    sink.cork();
    process.nextTick(uncork);
  });
}
