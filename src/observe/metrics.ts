/**
 * Prometheus metrics (prom-client) on their own listener (`metrics.listen`), never on the public
 * port. Label values come from closed sets — route class, method, status, outcome — never a
 * repository, a user or anything else a client chooses, so a scan cannot grow the series.
 */
import http from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Route } from '../registry/route.js';

export type RouteClass = 'ping' | 'token' | 'manifest' | 'blob' | 'upload' | 'catalog' | 'tags' | 'referrers' | 'health' | 'other';
export type AuthOutcome = 'ok' | 'bad_password' | 'unknown_user' | 'limited' | 'unavailable' | 'token_refused';

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/** One finished request, as the pipeline saw it. */
export interface RequestSample {
  route: RouteClass;
  method: string;
  status: number;
  seconds: number;
  /** Until the registry's answer began, when it was asked. */
  upstreamSeconds?: number;
  bytesIn: number;
  bytesOut: number;
  auth?: AuthOutcome;
  cache?: 'hit' | 'miss';
  tokenIssued?: boolean;
}

export function routeClass(pathname: string, route: Route | null): RouteClass {
  if (pathname === '/token') return 'token';
  if (pathname === '/healthz' || pathname === '/readyz') return 'health';
  if (!route) return 'other';
  if (route.kind === 'ping') return 'ping';
  if (route.kind === 'catalog') return 'catalog';
  if (route.kind === 'repository') return route.endpoint;
  return 'other';
}

export interface MetricSources {
  notAfter(): Date | null;
  acmeOrders(): Readonly<{ issued: number; failed: number }> | null;
}

export class Metrics {
  readonly registry = new Registry();
  private readonly requests = new Counter({ name: 'registry_gate_requests_total', help: 'Requests answered, by route class, method and status.', labelNames: ['route', 'method', 'status'], registers: [this.registry] });
  private readonly duration = new Histogram({
    name: 'registry_gate_request_duration_seconds',
    help: 'Time from request to the end of the answer, by route class.',
    labelNames: ['route'],
    buckets: [0.005, 0.025, 0.1, 0.5, 2.5, 10, 60, 300, 1800],
    registers: [this.registry],
  });
  private readonly upstream = new Histogram({
    name: 'registry_gate_upstream_duration_seconds',
    help: 'Time until the registry began to answer, by route class.',
    labelNames: ['route'],
    buckets: [0.001, 0.005, 0.025, 0.1, 0.5, 2.5, 10, 60],
    registers: [this.registry],
  });
  private readonly received = new Counter({ name: 'registry_gate_received_bytes_total', help: 'Bytes received from clients, by route class.', labelNames: ['route'], registers: [this.registry] });
  private readonly sent = new Counter({ name: 'registry_gate_sent_bytes_total', help: 'Bytes sent to clients, by route class.', labelNames: ['route'], registers: [this.registry] });
  private readonly auth = new Counter({ name: 'registry_gate_auth_total', help: 'Credential and token checks, by outcome.', labelNames: ['outcome'], registers: [this.registry] });
  private readonly tokens = new Counter({ name: 'registry_gate_tokens_issued_total', help: 'Tokens issued by the token service.', registers: [this.registry] });
  private readonly cache = new Counter({ name: 'registry_gate_cache_requests_total', help: 'Answers from the response cache (hit) or filling it (miss).', labelNames: ['result'], registers: [this.registry] });
  private readonly transfers = new Gauge({ name: 'registry_gate_transfers_in_flight', help: 'Blob uploads and downloads under way.', labelNames: ['direction'], registers: [this.registry] });

  constructor(tls: MetricSources) {
    collectDefaultMetrics({ register: this.registry });
    // Counted where the orders run; each scrape adds what happened since the last one.
    const seen = { issued: 0, failed: 0 };
    new Counter({
      name: 'registry_gate_acme_orders_total',
      help: 'ACME certificate orders, by result (issued, failed); absent unless tls.mode is "acme".',
      labelNames: ['result'],
      registers: [this.registry],
      collect() {
        const orders = tls.acmeOrders();
        if (!orders) return;
        for (const result of ['issued', 'failed'] as const) {
          this.inc({ result }, orders[result] - seen[result]);
          seen[result] = orders[result];
        }
      },
    });
    new Gauge({
      name: 'registry_gate_certificate_not_after_timestamp_seconds',
      help: 'When the served TLS certificate expires (Unix time); absent without TLS.',
      registers: [this.registry],
      collect() {
        const notAfter = tls.notAfter();
        if (notAfter) this.set(notAfter.getTime() / 1000);
      },
    });
  }

  observe(s: RequestSample): void {
    const method = METHODS.has(s.method) ? s.method : 'OTHER';
    this.requests.inc({ route: s.route, method, status: s.status });
    this.duration.observe({ route: s.route }, s.seconds);
    if (s.upstreamSeconds !== undefined) this.upstream.observe({ route: s.route }, s.upstreamSeconds);
    if (s.bytesIn > 0) this.received.inc({ route: s.route }, s.bytesIn);
    if (s.bytesOut > 0) this.sent.inc({ route: s.route }, s.bytesOut);
    if (s.auth) this.auth.inc({ outcome: s.auth });
    if (s.cache) this.cache.inc({ result: s.cache });
    if (s.tokenIssued) this.tokens.inc();
  }

  /** A blob transfer began; call the returned function once it is over. */
  transferStarted(direction: 'upload' | 'download'): () => void {
    this.transfers.inc({ direction });
    return () => this.transfers.dec({ direction });
  }

  /** The exposition text, as a scrape gets it. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /** GET /metrics, for a listener of its own. */
  readonly handler: http.RequestListener = (req, res) => {
    if (req.url !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      return void res.end('metrics are at GET /metrics\n');
    }
    this.text().then(
      (text) => {
        res.writeHead(200, { 'content-type': this.registry.contentType });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      (err: Error) => {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`cannot collect metrics: ${err.message}\n`);
      },
    );
  };
}
