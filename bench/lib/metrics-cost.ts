/**
 * What the metrics cost per request, measured in this process: one Metrics.observe() with the
 * label mix of a push and pull (the proxy makes one per request), plus a transfer gauge step.
 */
import { Metrics, type RequestSample } from '../../src/observe/metrics.js';

const SAMPLES = 200_000;

export function measureMetricsCost(): number {
  const metrics = new Metrics({ notAfter: () => null, acmeOrders: () => null });
  const mix: RequestSample[] = [
    { route: 'manifest', method: 'GET', status: 200, seconds: 0.002, upstreamSeconds: 0.001, bytesIn: 0, bytesOut: 1200, auth: 'ok', cache: 'hit' },
    { route: 'blob', method: 'GET', status: 200, seconds: 0.4, upstreamSeconds: 0.001, bytesIn: 0, bytesOut: 30_000_000, auth: 'ok' },
    { route: 'upload', method: 'PATCH', status: 202, seconds: 1.2, upstreamSeconds: 1.1, bytesIn: 30_000_000, bytesOut: 0, auth: 'ok' },
    { route: 'token', method: 'GET', status: 200, seconds: 0.001, bytesIn: 0, bytesOut: 900, auth: 'ok', tokenIssued: true },
    { route: 'ping', method: 'GET', status: 401, seconds: 0.0001, bytesIn: 0, bytesOut: 150 },
  ];
  const run = (n: number): void => {
    for (let i = 0; i < n; i++) {
      const s = mix[i % mix.length]!;
      const done = s.route === 'blob' ? metrics.transferStarted('download') : null;
      metrics.observe(s);
      done?.();
    }
  };
  run(SAMPLES / 10);
  const started = process.hrtime.bigint();
  run(SAMPLES);
  return Number(process.hrtime.bigint() - started) / 1e3 / SAMPLES;
}
