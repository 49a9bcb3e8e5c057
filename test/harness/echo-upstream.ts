import { createHash } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import http, { type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** How the fake upstream answers one request. Everything is optional; {} means the JSON echo. */
export interface UpstreamPlan {
  status?: number;
  headers?: OutgoingHttpHeaders;
  body?: string | Buffer;
  /** Wait this long before sending the status line (to provoke the proxy's upstream timeout). */
  delayMs?: number;
  /**
   * Send the headers (Content-Length announcing the full body) and only this many body bytes,
   * then destroy the socket: an upstream dying mid-response.
   */
  destroyAfterBytes?: number;
  /** Never send anything; the request stays open until the client or stop() closes it. */
  neverAnswer?: boolean;
  /** Answer as soon as the headers arrived instead of after reading the whole request body. */
  beforeBody?: boolean;
  /** Send the body with Transfer-Encoding: chunked (no Content-Length), in two chunks. */
  chunked?: boolean;
}

export interface RecordedRequest {
  id: number;
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  /** Header names as the client spelled them, in order, alternating name/value. */
  rawHeaders: string[];
  /** Bytes of request body received so far. */
  bodyBytes: number;
  /** sha256:<hex> of the body, once it was completely received. */
  bodySha256: string | null;
  bodyComplete: boolean;
  /** The connection went away before our response was complete: the client (the proxy) aborted. */
  abortedByClient: boolean;
  /** The request's socket has closed (for any reason). */
  socketClosed: boolean;
  /** Resolves when the socket of this request closes. */
  closed: Promise<void>;
  /** Resolves when the request body ended or the request was torn down. */
  bodyDone: Promise<void>;
}

export type UpstreamHandler = (req: RecordedRequest) => UpstreamPlan | undefined;

export interface EchoUpstream {
  url: string;
  port: number;
  /** Every request received, oldest first. */
  requests: RecordedRequest[];
  /** Plans used for the next requests, first in first out, before the handler. */
  enqueue(...plans: UpstreamPlan[]): void;
  /** Decides the plan of requests the queue does not cover; undefined → echo. */
  setHandler(handler: UpstreamHandler | null): void;
  /** A recorded or future request matching `pred`. */
  waitForRequest(pred?: (r: RecordedRequest) => boolean, timeoutMs?: number): Promise<RecordedRequest>;
  /** TCP connections open right now. */
  openSockets(): number;
  /** TCP connections accepted since start (keep-alive reuse shows up as fewer). */
  totalSockets(): number;
  reset(): void;
  stop(): Promise<void>;
}

function echoBody(r: RecordedRequest): Buffer {
  return Buffer.from(
    JSON.stringify({
      method: r.method,
      url: r.url,
      headers: r.headers,
      rawHeaders: r.rawHeaders,
      bodyBytes: r.bodyBytes,
      bodySha256: r.bodySha256,
    }),
  );
}

/**
 * A programmable node:http server standing in for the registry in header- and failure-level
 * tests, where the real registry cannot be made to misbehave on cue. By default it answers 200
 * with a JSON echo of what it received, so a test sees exactly what the proxy forwarded.
 */
export async function startEchoUpstream(): Promise<EchoUpstream> {
  const requests: RecordedRequest[] = [];
  const queue: UpstreamPlan[] = [];
  let handler: UpstreamHandler | null = null;
  const sockets = new Set<Socket>();
  let total = 0;
  let nextId = 1;
  const events = new EventEmitter();
  const destroyedByUs = new Set<number>();

  const server = http.createServer({ requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 30_000 });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    total += 1;
    s.on('close', () => sockets.delete(s));
  });

  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const hash = createHash('sha256');
    let markClosed!: () => void;
    let markBodyDone!: () => void;
    const rec: RecordedRequest = {
      id: nextId++,
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      rawHeaders: req.rawHeaders,
      bodyBytes: 0,
      bodySha256: null,
      bodyComplete: false,
      abortedByClient: false,
      socketClosed: false,
      closed: new Promise<void>((r) => (markClosed = r)),
      bodyDone: new Promise<void>((r) => (markBodyDone = r)),
    };
    requests.push(rec);
    const socket = req.socket;
    const onSocketClose = (): void => {
      rec.socketClosed = true;
      if (!res.writableFinished && !destroyedByUs.has(rec.id)) rec.abortedByClient = true;
      markClosed();
      markBodyDone();
    };
    if (socket.destroyed) onSocketClose();
    else socket.once('close', onSocketClose);
    // A keep-alive socket outlives this request; stop listening once the response is out.
    res.once('finish', () => socket.removeListener('close', onSocketClose));
    res.once('close', () => {
      if (!res.writableFinished && !destroyedByUs.has(rec.id)) {
        rec.abortedByClient = true;
        markBodyDone();
      }
    });

    req.on('data', (chunk: Buffer) => {
      rec.bodyBytes += chunk.length;
      hash.update(chunk);
    });
    req.on('end', () => {
      rec.bodyComplete = true;
      rec.bodySha256 = `sha256:${hash.digest('hex')}`;
      markBodyDone();
    });
    req.on('error', () => markBodyDone());
    events.emit('request', rec);

    const plan = queue.shift() ?? handler?.(rec) ?? {};
    void respond(rec, res, plan).catch(() => res.destroy());
  });

  async function respond(rec: RecordedRequest, res: http.ServerResponse, plan: UpstreamPlan): Promise<void> {
    if (!plan.beforeBody) await rec.bodyDone;
    if (plan.neverAnswer) return;
    if (plan.delayMs) await sleep(plan.delayMs);
    if (res.destroyed) return;
    const useEcho = plan.body === undefined && plan.destroyAfterBytes === undefined;
    const body = useEcho
      ? echoBody(rec)
      : typeof plan.body === 'string'
        ? Buffer.from(plan.body)
        : (plan.body ?? Buffer.alloc((plan.destroyAfterBytes ?? 0) * 2 + 1024, 0x61));
    const headers: OutgoingHttpHeaders = {
      ...(useEcho ? { 'content-type': 'application/json' } : {}),
      ...(plan.chunked ? {} : { 'content-length': String(body.length) }),
      ...plan.headers,
    };
    res.writeHead(plan.status ?? 200, headers);
    if (plan.chunked) {
      res.write(body.subarray(0, body.length >> 1));
      res.end(body.subarray(body.length >> 1));
      return;
    }
    if (plan.destroyAfterBytes !== undefined) {
      // Give the bytes a chance to leave before the socket is torn down mid-body.
      if (!res.write(body.subarray(0, plan.destroyAfterBytes))) await once(res, 'drain').catch(() => {});
      await sleep(50);
      destroyedByUs.add(rec.id);
      res.socket?.destroy();
      return;
    }
    res.end(rec.method === 'HEAD' ? undefined : body);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('echo upstream has no TCP address');

  return {
    url: `http://127.0.0.1:${addr.port}`,
    port: addr.port,
    requests,
    enqueue: (...plans) => void queue.push(...plans),
    setHandler: (h) => void (handler = h),
    waitForRequest(pred = () => true, timeoutMs = 5_000) {
      const found = requests.find(pred);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const onReq = (r: RecordedRequest): void => {
          if (!pred(r)) return;
          clearTimeout(timer);
          events.off('request', onReq);
          resolve(r);
        };
        const timer = setTimeout(() => {
          events.off('request', onReq);
          reject(new Error(`echo upstream: no matching request within ${timeoutMs} ms (saw ${requests.length})`));
        }, timeoutMs);
        events.on('request', onReq);
      });
    },
    openSockets: () => sockets.size,
    totalSockets: () => total,
    reset() {
      requests.length = 0;
      queue.length = 0;
      handler = null;
    },
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
