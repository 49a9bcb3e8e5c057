/**
 * How long a client may keep a connection busy, judged apart for each phase: the headers (a
 * slowloris sends them a byte at a time), the body (an upload that stops arriving), and the wait
 * for the registry, which may legitimately be long (a multi-GB blob being committed).
 */
import type { IncomingMessage, Server, ServerOptions, ServerResponse } from 'node:http';
import type { Config } from '../config/types.js';

export interface ClientTimeouts {
  /** Whole request head, from the first byte. */
  headerMs: number;
  /** Silence allowed while a request body is arriving. */
  bodyIdleMs: number;
  /** Silence allowed otherwise: outlasts the upstream timeout so a client waiting on a silent registry gets the proxy's 504 first. */
  idleMs: number;
}

const CLIENT_IDLE_MARGIN_S = 30;
/** Node checks header deadlines on a timer (30 s by default, which would stretch a 60 s limit to 90 s). */
const MAX_CHECK_INTERVAL_MS = 30_000;

export function clientTimeouts(config: Pick<Config, 'upstreamTimeoutSeconds' | 'limits'>): ClientTimeouts {
  return {
    headerMs: config.limits.headerTimeoutSeconds * 1000,
    bodyIdleMs: config.limits.bodyIdleSeconds * 1000,
    idleMs: (config.upstreamTimeoutSeconds + CLIENT_IDLE_MARGIN_S) * 1000,
  };
}

/** Options only a server's constructor takes. */
export function serverOptions(t: ClientTimeouts): Pick<ServerOptions, 'connectionsCheckingInterval'> {
  return { connectionsCheckingInterval: Math.min(MAX_CHECK_INTERVAL_MS, Math.max(250, t.headerMs / 4)) };
}

/**
 * Node's defaults cut any request after 300 s (requestTimeout), which kills multi-GB pushes.
 * Setting requestTimeout to 0 also zeroes headersTimeout, so both are set explicitly.
 */
export function configureTimeouts(server: Server, t: ClientTimeouts): void {
  server.requestTimeout = 0;
  server.headersTimeout = t.headerMs;
  server.keepAliveTimeout = 75_000;
  server.timeout = t.idleMs;
}

/**
 * While the body of `req` arrives, the connection may be silent for `bodyIdleMs` only; then it is
 * cut and `onCut` says so. Once the body is in, the long idle limit applies again (the registry
 * may take its time to answer).
 */
export function limitBodyIdle(req: IncomingMessage, res: ServerResponse, t: ClientTimeouts, onCut: () => void): void {
  const socket = req.socket;
  socket.setTimeout(t.bodyIdleMs);
  // A listener here keeps Node's own handler from acting, so the cut is ours and is recorded.
  const onTimeout = (): void => {
    onCut();
    socket.destroy();
  };
  req.once('timeout', onTimeout);
  req.once('end', () => {
    req.off('timeout', onTimeout);
    // After the answer Node has set the keep-alive timeout; that one stays.
    if (!res.writableFinished) socket.setTimeout(t.idleMs);
  });
}
