import net from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { FIELD_VALUE, parseResponseHead, TOKEN, type ResponseHead } from './response-head.js';
import { HOP_BY_HOP } from './headers.js';

/**
 * Blob transfers, the proxy's heaviest traffic, exchanged with the registry without node:http.
 *
 * Downloads: node:http hands every socket read to JavaScript in a fresh 64 KiB buffer and its
 * parser copies each body chunk again; for a multi-GB layer that is most of what the proxy costs
 * beyond TLS. Here each upstream connection reads into one buffer of its own (net's `onread`),
 * stops reading until the client's TLS socket has taken the chunk, and reads again into the same
 * memory. Measured on reading alone: 0.19 CPU s/GiB against 0.5–0.9 through node:http.
 *
 * Uploads (PATCH, PUT of an upload session): the body chunks the client's request yields are
 * written straight to the upstream socket, without the ClientRequest, its OutgoingMessage and the
 * pipe between them that http-proxy-3 puts in each chunk's way.
 *
 * Only the simple case is taken: a plain-HTTP upstream, a request whose head can be written as it
 * came, and a response whose head response-head.ts accepts. Anything else is handed back to the
 * caller to send the general way — before a byte has gone to the client, and for an upload before
 * a byte of its body was read; an upload whose answer turns out odd after that gets a 502.
 */

/**
 * One buffer per connection, read into again only once the chunk has left. Two, so that the next
 * read could land while the previous chunk was still being sent: no measurable gain (8
 * alternating runs), twice the memory with many downloads at once.
 */
const READ_BYTES = 256 * 1024;
/** Upload body queued on an upstream socket before the client's request is paused. */
const WRITE_BYTES = 128 * 1024;
/** Idle connections kept for reuse; each holds READ_BYTES. */
const MAX_IDLE = 8;
/** An idle connection unused this long is closed rather than found dead by the next request. */
const IDLE_MS = 30_000;

/** Who reads a connection right now: the exchange it serves, or nobody while it is idle. */
interface Reader {
  /**
   * `chunk` is the connection's own buffer; call `release` once it is no longer needed (the
   * connection does not read into the buffer again before).
   */
  data(chunk: Buffer, release: () => void): void;
  /** The socket ended, failed or timed out. */
  gone(code: string): void;
}

class UpstreamConnection {
  readonly socket: net.Socket;
  reader: Reader | null = null;
  /** Has carried a complete exchange: a failure before any answer may just be a stale socket. */
  reused = false;
  /** The buffer holds a chunk that has not left yet; reading waits for its release. */
  private held = false;

  constructor(host: string, port: number, onIdleGone: (c: UpstreamConnection) => void) {
    const options: net.NetConnectOpts & { writableHighWaterMark: number } = {
      host,
      port,
      noDelay: true,
      // Passed on to the Duplex (the typings omit it): room for a loop turn of upload body while
      // the socket is corked (see sendBody).
      writableHighWaterMark: WRITE_BYTES,
      onread: {
        buffer: Buffer.allocUnsafe(READ_BYTES),
        callback: (n: number, buf: Uint8Array) => this.read((buf as Buffer).subarray(0, n)),
      },
    };
    this.socket = net.connect(options);
    const gone = (code: string): void => {
      const reader = this.reader;
      this.reader = null;
      if (reader) reader.gone(code);
      else onIdleGone(this);
    };
    this.socket.on('error', (err: NodeJS.ErrnoException) => gone(err.code ?? 'EUNKNOWN'));
    this.socket.on('end', () => gone('ECONNRESET'));
    this.socket.on('close', () => gone('ECONNRESET'));
    this.socket.on('timeout', () => gone(this.reader ? 'UPSTREAM_TIMEOUT' : 'IDLE'));
  }

  /** False stops reading until the chunk is released. */
  private read(chunk: Buffer): boolean {
    const reader = this.reader;
    if (!reader) {
      // Bytes nobody asked for: the connection is out of step, never trust it again.
      this.socket.destroy();
      return false;
    }
    this.held = true;
    reader.data(chunk, () => this.release());
    return !this.held;
  }

  private release(): void {
    if (!this.held) return;
    this.held = false;
    if (!this.socket.destroyed) this.socket.resume();
  }

  /** Reads on while idle: that is how a registry closing the connection is noticed. */
  resume(): void {
    this.socket.resume();
  }

  destroy(): void {
    this.reader = null;
    this.socket.destroy();
  }
}

export interface RelayOutcome {
  upstreamStatus?: number;
  failure?: string;
  answeredAt?: bigint;
  /** The registry's Docker-Content-Digest (what a push stored). */
  contentDigest?: string;
}

export interface BlobRelay {
  /**
   * Streams the registry's answer to `req` into `res`. Calls `fallback` instead — before anything
   * reached `res` — when the exchange is outside what the relay handles, and `fail` when the
   * registry cannot be reached or falls silent before answering.
   */
  relay(req: IncomingMessage, res: ServerResponse, outcome: RelayOutcome, fallback: () => void, fail: (code: string) => void): void;
  close(): void;
}

/** Null when the upstream is not plain HTTP at the origin's root (TLS, a path or credentials in the URL). */
export function createBlobRelay(target: URL, timeoutMs: number): BlobRelay | null {
  if (target.protocol !== 'http:' || target.pathname !== '/' || target.search || target.username || target.password) return null;
  const host = target.hostname.replace(/^\[|\]$/g, '');
  const port = Number(target.port || 80);
  const idle: UpstreamConnection[] = [];
  const busy = new Set<UpstreamConnection>();

  const forget = (c: UpstreamConnection): void => {
    const at = idle.indexOf(c);
    if (at !== -1) idle.splice(at, 1);
    busy.delete(c);
    c.destroy();
  };
  const take = (fresh = false): UpstreamConnection => {
    const c = (fresh ? undefined : idle.pop()) ?? new UpstreamConnection(host, port, forget);
    c.socket.ref();
    c.socket.setTimeout(timeoutMs);
    busy.add(c);
    return c;
  };
  const release = (c: UpstreamConnection, reusable: boolean): void => {
    busy.delete(c);
    c.reader = null;
    if (!reusable || idle.length >= MAX_IDLE || c.socket.destroyed) return c.destroy();
    c.reused = true;
    c.socket.unref();
    c.socket.setTimeout(IDLE_MS);
    idle.push(c);
    c.resume();
  };

  return {
    relay(req, res, outcome, fallback, fail) {
      const head = requestHead(req, target.host);
      if (head === null) return fallback();
      /** Upload body already read from the client: from then on there is no way back. */
      let bodyStarted = false;
      const exchange = (conn: UpstreamConnection): void => {
        let received: Buffer | null = null;
        let remaining = -1;
        let reusable = false;
        let done = false;
        const upload = head.body === 'none' ? null : sendBody(req, conn.socket, head.body === 'chunked', () => (bodyStarted = true));

        const finish = (): void => {
          if (done) return;
          done = true;
          res.off('close', clientGone);
          // The registry answered before the whole upload came (a refusal): what is left of it
          // is read and dropped, and the connection, out of step, is not used again.
          if (upload && !upload.complete()) reusable = false;
          upload?.stop();
          release(conn, reusable);
        };
        const abandon = (): void => {
          if (done) return;
          done = true;
          res.off('close', clientGone);
          upload?.stop();
          busy.delete(conn);
          conn.destroy();
        };
        const clientGone = (): void => {
          if (!res.writableFinished) abandon();
        };
        res.on('close', clientGone);

        const startResponse = (parsed: ResponseHead): void => {
          outcome.answeredAt = process.hrtime.bigint();
          outcome.upstreamStatus = parsed.status;
          res.statusCode = parsed.status;
          const repeated = new Map<string, string[]>();
          for (const [name, value] of parsed.headers) {
            if (HOP_BY_HOP.includes(name)) continue;
            if (name === 'docker-content-digest') outcome.contentDigest = value;
            const values = repeated.get(name);
            if (values) values.push(value);
            else repeated.set(name, [value]);
          }
          for (const [name, values] of repeated) res.setHeader(name, values.length === 1 ? values[0]! : values);
          remaining = parsed.bodyLength;
          reusable = parsed.keepAlive;
        };

        const body = (chunk: Buffer, release: () => void): void => {
          if (chunk.length > remaining) {
            // More than Content-Length announced: the registry is out of step with us.
            reusable = false;
            chunk = chunk.subarray(0, remaining);
          }
          remaining -= chunk.length;
          if (remaining === 0) {
            res.end(chunk, () => {
              release();
              finish();
            });
          } else if (chunk.length === 0) {
            release();
          } else {
            res.write(chunk, release);
          }
        };

        conn.reader = {
          data(chunk, release) {
            if (remaining >= 0) return body(chunk, release);
            received = received ? Buffer.concat([received, chunk]) : chunk;
            const parsed = parseResponseHead(received);
            if (parsed === 'incomplete') {
              // The connection's buffer will be read into again.
              if (received === chunk) received = Buffer.from(chunk);
              return release();
            }
            if (parsed === 'unsupported') {
              abandon();
              release();
              return bodyStarted ? fail('EPROTO') : fallback();
            }
            startResponse(parsed);
            body(received.subarray(parsed.headLength), release);
          },
          gone(code) {
            if (remaining === 0) {
              // The whole body is in: let it reach the client (finish() then drops the connection).
              reusable = false;
              return;
            }
            const answered = res.headersSent || remaining >= 0;
            const stale = conn.reused && received === null && code !== 'UPSTREAM_TIMEOUT' && !bodyStarted;
            abandon();
            if (stale) return exchange(take(true));
            if (answered) {
              if (outcome.failure === undefined) outcome.failure = code;
              res.destroy();
              return;
            }
            fail(code);
          },
        };
        conn.socket.write(head.text);
        upload?.start();
        conn.resume();
      };
      exchange(take());
    },
    close() {
      for (const c of [...idle, ...busy]) c.destroy();
      idle.length = 0;
      busy.clear();
    },
  };
}

interface BodySender {
  start(): void;
  /** Stops passing the body on; what is left of it is read and dropped. */
  stop(): void;
  complete(): boolean;
}

/**
 * Writes the request's body to the registry as it arrives, chunked again when it came chunked.
 * The plaintext of a TLS read reaches us as 16 KiB chunks, each from its own callback, and Node
 * flushes a socket's writes as each callback returns; corked until the I/O phase of the loop turn
 * is over, the chunks go out as one writev (half the syscalls per GiB uploaded).
 */
function sendBody(req: IncomingMessage, socket: net.Socket, chunked: boolean, started: () => void): BodySender {
  let ended = false;
  let corked = false;
  let paused = false;
  const uncork = (): void => {
    corked = false;
    socket.uncork();
  };
  const onDrain = (): void => {
    paused = false;
    req.resume();
  };
  const onData = (chunk: Buffer): void => {
    started();
    if (!corked) {
      corked = true;
      socket.cork();
      setImmediate(uncork);
    }
    if (chunked) socket.write(`${chunk.length.toString(16)}\r\n`);
    const room = socket.write(chunk);
    if (chunked) socket.write('\r\n');
    if (!room && !paused) {
      paused = true;
      req.pause();
      socket.once('drain', onDrain);
    }
  };
  const onEnd = (): void => {
    ended = true;
    if (chunked) socket.write('0\r\n\r\n');
  };
  return {
    start() {
      req.on('data', onData);
      req.once('end', onEnd);
    },
    stop() {
      req.off('data', onData);
      req.off('end', onEnd);
      socket.off('drain', onDrain);
      if (!ended) req.resume();
    },
    complete: () => ended,
  };
}

const REQUEST_TARGET = /^\/[\x21-\x7e]*$/;

interface RequestHead {
  text: string;
  body: 'none' | 'length' | 'chunked';
}

/**
 * The request line and headers as http-proxy-3 would send them (the caller has already prepared
 * the headers), and how the body is framed. Null when anything in it could not be written as is,
 * or when a GET has a body.
 */
function requestHead(req: IncomingMessage, upstreamHost: string): RequestHead | null {
  const url = req.url ?? '';
  if (!REQUEST_TARGET.test(url)) return null;
  const headers = req.headers;
  const method = req.method;
  const te = headers['transfer-encoding'];
  const length = headers['content-length'];
  let body: RequestHead['body'] | 'unframed';
  if (te !== undefined) body = te.toLowerCase() === 'chunked' && length === undefined ? 'chunked' : 'unframed';
  else body = length === undefined || length === '0' ? 'none' : /^\d{1,15}$/.test(length) ? 'length' : 'unframed';
  if (body === 'unframed' || (method === 'GET' && body !== 'none') || (method !== 'GET' && method !== 'PATCH' && method !== 'PUT')) return null;
  let text = `${method} ${url} HTTP/1.1\r\n`;
  if (headers.host === undefined) text += `host: ${upstreamHost}\r\n`;
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    for (const one of Array.isArray(value) ? value : [value]) {
      if (!TOKEN.test(name) || !FIELD_VALUE.test(one)) return null;
      text += `${name}: ${one}\r\n`;
    }
  }
  return { text: `${text}connection: keep-alive\r\n\r\n`, body };
}

