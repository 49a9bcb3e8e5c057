/**
 * A crowd of anonymous pulls at once, as when a deployment starts the same image on many nodes:
 * each puller opens its own TLS connection, asks /token for an anonymous pull token (what docker
 * does after the 401 of its first request) and GETs the tag's manifest with it. All start
 * together; each one's time runs from its start to the last byte of the manifest.
 */
import https from 'node:https';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import tls from 'node:tls';
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
  return summarize(c.count, () => Promise.allSettled(Array.from({ length: c.count }, (_, i) => pullOnce(c, i))));
}

async function summarize(count: number, all: () => Promise<PromiseSettledResult<number>[]>): Promise<CrowdResult> {
  const started = performance.now();
  const outcomes = await all();
  const seconds = (performance.now() - started) / 1000;
  const times = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : [])).sort((a, b) => a - b);
  const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
  return {
    pulls: count,
    errors: count - times.length,
    firstError: failed ? String(failed.reason instanceof Error ? failed.reason.message : failed.reason) : null,
    p50ms: percentile(times, 50),
    p99ms: percentile(times, 99),
    seconds,
  };
}

export interface HandshakeCrowd {
  /** host:port of a TLS front end. */
  port: number;
  ca: string;
  count: number;
}

/**
 * What a crowd of new connections costs a front end, without anything else: each client opens a
 * TLS connection, sends `GET /v2/` without credentials and reads the status line. All start
 * together; each one's time runs from its start to the status line.
 */
export async function crowdHandshakes(c: HandshakeCrowd): Promise<CrowdResult> {
  const once = (i: number): Promise<number> =>
    new Promise((resolve, reject) => {
      const started = performance.now();
      const tcp = net.connect({ host: '127.0.0.1', port: c.port, localAddress: loopbackClient(i, PER_ADDRESS) });
      const socket = tls.connect({ socket: tcp, ca: c.ca, servername: 'localhost' }, () => {
        socket.write('GET /v2/ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
      });
      let head = '';
      socket.on('data', (chunk: Buffer) => {
        head += chunk.toString('latin1');
        const line = head.indexOf('\r\n');
        if (line === -1) return;
        socket.destroy();
        const status = head.slice(0, line);
        // 401 from the proxy and the peers that ask for credentials there, 200 from Caddy (its basicauth covers /v2/* only).
        if (/^HTTP\/1\.1 (200|401) /.test(status)) resolve(performance.now() - started);
        else reject(new Error(`GET /v2/ answered "${status}"`));
      });
      socket.once('error', reject);
      socket.once('close', () => reject(new Error('closed before the status line')));
    });
  return summarize(c.count, () => Promise.allSettled(Array.from({ length: c.count }, (_, i) => once(i))));
}
