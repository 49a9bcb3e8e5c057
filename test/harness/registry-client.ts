import { createHash } from 'node:crypto';
import http, { type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export { deterministicStream, DeterministicStream } from './deterministic-stream.js';

export type ClientAuth = { user: string; pass: string } | { bearer: string };

export interface TlsOptions {
  /** Extra CA (PEM) to trust; the connection is verified against it. */
  ca?: string | Buffer;
  /** Skip certificate verification (readiness probes, tests about the certificate itself). */
  insecure?: boolean;
  /** SNI / name checked in the certificate, when the URL host is an IP but the cert has a name. */
  servername?: string;
}

export interface RequestOptions extends TlsOptions {
  method?: string;
  headers?: OutgoingHttpHeaders;
  auth?: ClientAuth;
  body?: string | Buffer | Readable;
  /** Socket idle timeout; default 60 s. */
  timeoutMs?: number;
  /** Default: a fresh connection per request (agent: false). */
  agent?: http.Agent;
}

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export function authHeader(auth: ClientAuth): string {
  return 'bearer' in auth ? `Bearer ${auth.bearer}` : `Basic ${Buffer.from(`${auth.user}:${auth.pass}`).toString('base64')}`;
}

function clientFor(url: URL): typeof http | typeof https {
  if (url.protocol === 'https:') return https;
  if (url.protocol === 'http:') return http;
  throw new Error(`unsupported URL scheme: ${url.href}`);
}

function tlsFields(o: TlsOptions): Pick<https.AgentOptions, 'ca' | 'rejectUnauthorized' | 'servername'> {
  return {
    ...(o.ca !== undefined ? { ca: o.ca } : {}),
    rejectUnauthorized: !o.insecure,
    ...(o.servername !== undefined ? { servername: o.servername } : {}),
  };
}

async function collect(res: http.IncomingMessage): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of res) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/** One HTTP(S) request; the request body streams, the response body is collected (tests read it). */
export async function request(url: string, opts: RequestOptions = {}): Promise<HttpResponse> {
  const u = new URL(url);
  const headers: OutgoingHttpHeaders = { ...opts.headers };
  if (opts.auth) headers['authorization'] = authHeader(opts.auth);
  if (typeof opts.body === 'string' || Buffer.isBuffer(opts.body)) headers['content-length'] ??= String(Buffer.byteLength(opts.body));
  const req = clientFor(u).request(u, {
    method: opts.method ?? 'GET',
    headers,
    agent: opts.agent ?? false,
    timeout: opts.timeoutMs ?? 60_000,
    ...tlsFields(opts),
  });
  const response = new Promise<http.IncomingMessage>((resolve, reject) => {
    req.once('response', resolve);
    req.once('error', reject);
    req.once('timeout', () => req.destroy(new Error(`${opts.method ?? 'GET'} ${url}: no activity for ${opts.timeoutMs ?? 60_000} ms`)));
  });
  if (opts.body instanceof Readable) {
    // The server may answer (401, 413) and close before taking the whole body; the response
    // is then what the test wants, not the write error.
    pipeline(opts.body, req).catch(() => {});
  } else {
    req.end(opts.body);
  }
  const res = await response;
  return { status: res.statusCode ?? 0, headers: res.headers, body: await collect(res) };
}

export function get(url: string, opts: Omit<RequestOptions, 'method' | 'body'> = {}): Promise<HttpResponse> {
  return request(url, { ...opts, method: 'GET' });
}

export function head(url: string, opts: Omit<RequestOptions, 'method' | 'body'> = {}): Promise<HttpResponse> {
  return request(url, { ...opts, method: 'HEAD' });
}

export interface PushBlobOptions extends TlsOptions {
  /** Bytes per PATCH. Use a value ≥ the blob size for a single streamed PATCH. */
  chunkBytes: number;
  auth?: ClientAuth;
  /** Blob size when the source does not carry `totalBytes`; lets each PATCH carry Content-Length and Content-Range. */
  totalBytes?: number;
  /** The blob's digest when it is known beforehand (as docker knows a layer's): nothing is hashed on the way. */
  digest?: string;
  headers?: OutgoingHttpHeaders;
  /** A new connection for every request (behind a load balancer: each may reach another replica). */
  freshConnections?: boolean;
}

export interface PushBlobResult {
  digest: string;
  /** Status of the final PUT (201 on success). */
  status: number;
  /** Every Location followed, absolute, in order (POST answer, then each PATCH answer). */
  locations: string[];
  bytes: number;
  patches: number;
}

class UnexpectedStatus extends Error {
  constructor(step: string, url: string, res: HttpResponse | { status: number; body: Buffer }) {
    super(`${step} ${url} answered ${res.status}: ${res.body.toString('utf8').slice(0, 500)}`);
  }
}

function followLocation(base: URL, res: { headers: IncomingHttpHeaders }, step: string): string {
  const loc = res.headers.location;
  if (!loc) throw new Error(`${step}: no Location header`);
  const next = new URL(loc, base);
  // A Location pointing elsewhere (the registry's own address, http instead of https) is
  // exactly the proxy bug these uploads are meant to catch.
  if (next.origin !== base.origin) throw new Error(`${step}: Location ${loc} leaves ${base.origin} (resolved to ${next.origin})`);
  return next.href;
}

/**
 * Pushes a blob the way docker does for big layers: POST to open an upload session, PATCHes
 * following each returned Location, then PUT ?digest=. The body is streamed from `source`
 * with backpressure (never held in memory) and hashed on the way, unless `digest` is given.
 */
export async function pushBlobChunked(
  baseUrl: string,
  repo: string,
  source: AsyncIterable<Buffer> | Readable,
  opts: PushBlobOptions,
): Promise<PushBlobResult> {
  if (!(opts.chunkBytes > 0)) throw new Error('pushBlobChunked: chunkBytes must be > 0');
  const base = new URL(baseUrl);
  const mod = clientFor(base);
  const total = opts.totalBytes ?? (source as { totalBytes?: number }).totalBytes;
  const agentOpts = { keepAlive: true, maxSockets: 1, ...tlsFields(opts) };
  // Without an agent, request() opens a connection of its own each time.
  const agent = opts.freshConnections ? undefined : base.protocol === 'https:' ? new https.Agent(agentOpts) : new http.Agent(agentOpts);
  const common = { agent, ca: opts.ca, insecure: opts.insecure, servername: opts.servername, timeoutMs: 300_000 };
  const baseHeaders: OutgoingHttpHeaders = { ...opts.headers };
  if (opts.auth) baseHeaders['authorization'] = authHeader(opts.auth);

  const locations: string[] = [];
  const hash = opts.digest === undefined ? createHash('sha256') : null;
  const it = source[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let pending: Buffer | null = null;
  let exhausted = false;
  const nextPiece = async (): Promise<Buffer | null> => {
    if (pending) {
      const p = pending;
      pending = null;
      return p;
    }
    if (exhausted) return null;
    const r = await it.next();
    if (r.done) {
      exhausted = true;
      return null;
    }
    return Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value as Uint8Array);
  };

  try {
    const startUrl = new URL(`/v2/${repo}/blobs/uploads/`, base).href;
    const started = await request(startUrl, { ...common, method: 'POST', headers: { ...baseHeaders, 'content-length': '0' } });
    if (started.status !== 202) throw new UnexpectedStatus('POST', startUrl, started);
    let location = followLocation(base, started, 'POST');
    locations.push(location);

    let offset = 0;
    let patches = 0;
    for (;;) {
      const len = total !== undefined ? Math.min(opts.chunkBytes, total - offset) : undefined;
      if (len === 0) break;
      const first = await nextPiece();
      if (first === null) {
        if (len !== undefined) throw new Error(`pushBlobChunked: source ended at ${offset} of ${total} bytes`);
        break;
      }
      pending = first;

      const headers: OutgoingHttpHeaders = { ...baseHeaders, 'content-type': 'application/octet-stream' };
      if (len !== undefined) {
        headers['content-length'] = String(len);
        headers['content-range'] = `${offset}-${offset + len - 1}`;
      }
      const patchUrl = location;
      const req = mod.request(patchUrl, { method: 'PATCH', headers, agent: agent ?? false, timeout: 300_000, ...tlsFields(opts) });
      let answered: http.IncomingMessage | null = null;
      let failed: Error | null = null;
      const response = new Promise<http.IncomingMessage>((resolve, reject) => {
        req.once('response', (r) => resolve((answered = r)));
        req.once('error', (e) => reject((failed = e)));
        req.once('timeout', () => req.destroy(new Error(`PATCH ${patchUrl}: idle for 300 s`)));
      });
      response.catch(() => {});

      const limit = len ?? opts.chunkBytes;
      let sent = 0;
      while (sent < limit && !answered && !failed) {
        let piece = await nextPiece();
        if (piece === null) break;
        if (piece.length > limit - sent) {
          pending = piece.subarray(limit - sent);
          piece = piece.subarray(0, limit - sent);
        }
        hash?.update(piece);
        sent += piece.length;
        if (!req.write(piece)) {
          await new Promise<void>((resolve) => {
            const done = (): void => {
              req.off('drain', done);
              req.off('response', done);
              req.off('error', done);
              req.off('close', done);
              resolve();
            };
            req.on('drain', done).on('response', done).on('error', done).on('close', done);
          });
        }
      }
      if (!answered && !failed) req.end();
      const res = await response;
      patches += 1;
      if (res.statusCode !== 202) {
        throw new UnexpectedStatus('PATCH', patchUrl, { status: res.statusCode ?? 0, body: await collect(res) });
      }
      res.resume();
      if (len !== undefined && sent < len) throw new Error(`pushBlobChunked: source ended at ${offset + sent} of ${total} bytes`);
      offset += sent;
      location = followLocation(base, res, 'PATCH');
      locations.push(location);
    }

    const digest = opts.digest ?? `sha256:${hash!.digest('hex')}`;
    const putUrl = new URL(location);
    putUrl.searchParams.set('digest', digest);
    const put = await request(putUrl.href, { ...common, method: 'PUT', headers: { ...baseHeaders, 'content-length': '0' } });
    if (put.status !== 201) throw new UnexpectedStatus('PUT', putUrl.href, put);
    return { digest, status: put.status, locations, bytes: offset, patches };
  } finally {
    agent?.destroy();
    if (source instanceof Readable) source.destroy();
  }
}
