/**
 * A TCP relay that slows what clients send to `bytesPerSecond` (answers pass at full speed): a
 * push that lasts longer than a token, without a slow machine. TLS passes through untouched, so
 * clients see the proxy's certificate; point them at the relay's port under the proxy's name.
 */
import net from 'node:net';
import { Transform, type TransformCallback } from 'node:stream';

export interface Throttle {
  port: number;
  /** Bytes clients sent through it so far. */
  sent(): number;
  close(): Promise<void>;
}

class Paced extends Transform {
  private readonly started = Date.now();
  private passed = 0;

  constructor(
    private readonly bytesPerSecond: number,
    private readonly count: (n: number) => void,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    const slice = Math.max(1024, Math.floor(this.bytesPerSecond / 20));
    const parts: Buffer[] = [];
    for (let at = 0; at < chunk.length; at += slice) parts.push(chunk.subarray(at, at + slice));
    const next = (): void => {
      const part = parts.shift();
      if (!part) return done();
      this.passed += part.length;
      this.count(part.length);
      this.push(part);
      const due = this.started + (this.passed / this.bytesPerSecond) * 1000 - Date.now();
      if (due > 0) setTimeout(next, due);
      else next();
    };
    next();
  }
}

export async function startThrottle(target: { host: string; port: number }, bytesPerSecond: number, listenHost = '::1'): Promise<Throttle> {
  let sent = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host);
    sockets.add(client).add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(new Paced(bytesPerSecond, (n) => (sent += n))).pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, listenHost, resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    sent: () => sent,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
