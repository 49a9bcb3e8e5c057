/**
 * A crowd of anonymous pulls at once, as when a deployment starts the same image on many nodes:
 * each puller opens its own TLS connection, asks /token for an anonymous pull token (what docker
 * does after the 401 of its first request) and GETs the tag's manifest with it. All start
 * together; each one's time runs from its start to the last byte of the manifest.
 */
import https from 'node:https';
import { performance } from 'node:perf_hooks';
import { get } from '../../test/harness/registry-client.js';
import { loopbackClient } from './loopback.js';

/** Under limits.maxConnectionsPerClient (512): the crowd comes from several addresses, as many nodes would. */
const PER_ADDRESS = 250;

export interface CrowdResult {
  pulls: number;
  errors: number;
  /** The first failure, as the puller saw it: without it a count of errors explains nothing. */
  firstError: string | null;
  p50ms: number;
  p99ms: number;
  seconds: number;
}

export interface Crowd {
  url: string;
  ca: string;
  /** The token service name (host:port). */
  service: string;
  repository: string;
  tag: string;
  accept: string;
  count: number;
}

async function pullOnce(c: Crowd, i: number): Promise<number> {
  // One connection for both requests, as a client's keep-alive would be.
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1, localAddress: loopbackClient(i, PER_ADDRESS) });
  const tls = { agent, ca: c.ca, servername: 'localhost' };
  const started = performance.now();
  try {
    const scope = `repository:${c.repository}:pull`;
    const token = await get(`${c.url}/token?service=${encodeURIComponent(c.service)}&scope=${encodeURIComponent(scope)}`, tls);
    if (token.status !== 200) throw new Error(`GET /token answered ${token.status}: ${token.body.toString().slice(0, 200)}`);
    const bearer = (JSON.parse(token.body.toString()) as { token: string }).token;
    const manifest = await get(`${c.url}/v2/${c.repository}/manifests/${c.tag}`, { ...tls, headers: { accept: c.accept }, auth: { bearer } });
    if (manifest.status !== 200) throw new Error(`GET manifest answered ${manifest.status}: ${manifest.body.toString().slice(0, 200)}`);
    return performance.now() - started;
  } finally {
    agent.destroy();
  }
}

const percentile = (sorted: readonly number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;

export async function crowdPull(c: Crowd): Promise<CrowdResult> {
  const started = performance.now();
  const outcomes = await Promise.allSettled(Array.from({ length: c.count }, (_, i) => pullOnce(c, i)));
  const seconds = (performance.now() - started) / 1000;
  const times = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : [])).sort((a, b) => a - b);
  const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
  return {
    pulls: c.count,
    errors: c.count - times.length,
    firstError: failed ? String(failed.reason instanceof Error ? failed.reason.message : failed.reason) : null,
    p50ms: percentile(times, 50),
    p99ms: percentile(times, 99),
    seconds,
  };
}
