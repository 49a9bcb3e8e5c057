import http from 'node:http';
import https from 'node:https';

export interface Readiness {
  ready: boolean;
  reasons: string[];
}

/**
 * The registry counts as reachable when `GET /v2/` gets any HTTP answer below 500 (401 is fine: a
 * registry with its own auth). Probes are cached briefly so a busy orchestrator cannot turn
 * /readyz into a load generator against the registry.
 */
export function upstreamProbe(upstream: string, cacheMs = 1000): () => Promise<string | null> {
  const url = new URL('/v2/', upstream);
  const client = url.protocol === 'https:' ? https : http;
  let cached: { at: number; result: Promise<string | null> } | null = null;
  const probe = () =>
    new Promise<string | null>((resolve) => {
      const req = client.get(url, { agent: false, timeout: 2000 }, (res) => {
        res.resume();
        const status = res.statusCode ?? 0;
        resolve(status < 500 ? null : `registry answered ${status} to GET /v2/`);
      });
      req.on('timeout', () => req.destroy(new Error('no answer within 2s')));
      req.on('error', (err) => resolve(`registry at ${url.host} unreachable (${(err as NodeJS.ErrnoException).code ?? err.message})`));
    });
  return () => {
    const now = Date.now();
    if (!cached || now - cached.at > cacheMs) cached = { at: now, result: probe() };
    return cached.result;
  };
}

const WATCH_MS = 2000;

/**
 * At start: says so when the registry does not answer (clients would otherwise only see 502),
 * then checks again until it does and says that too. Stops when `stop` is called.
 */
export function watchUpstreamAtStart(probe: () => Promise<string | null>, log: { warn(msg: string): void; info(msg: string): void }): { stop(): void } {
  let timer: NodeJS.Timeout | null = null;
  let stopped = false;
  const check = async (first: boolean): Promise<void> => {
    const reason = await probe();
    if (stopped) return;
    if (reason === null) {
      if (!first) log.info('the registry answers now; requests are forwarded');
      return;
    }
    if (first) log.warn(`${reason}: clients get 502 until it answers (upstream); checking every ${WATCH_MS / 1000} s`);
    timer = setTimeout(() => void check(false), WATCH_MS);
    timer.unref();
  };
  void check(true);
  return {
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}
