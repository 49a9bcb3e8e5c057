import type net from 'node:net';
import type tls from 'node:tls';
import { parseClientHello, type ClientHello } from './client-hello.js';

type ConnectionListener = (socket: net.Socket) => void;

/**
 * Lets a TLS server hand some connections to another server, decided from the ClientHello.
 * Needed for TLS-ALPN-01: Node picks the certificate (SNICallback) before it knows the ALPN
 * protocols, so a validation request for `acme-tls/1` can only get its special certificate if
 * the ClientHello is read first.
 *
 * The server's own 'connection' listener (where tls.Server starts the handshake) is moved
 * behind the peek instead of wrapping the server in another net.Server: the caller keeps a real
 * https.Server, whose listen/close, connection tracking and HTTP timeouts all work as usual.
 * The peeked bytes are pushed back with unshift(), and TLSSocket consumes data already buffered
 * on the socket it wraps.
 */
export function routeByClientHello(
  server: tls.Server,
  choose: (hello: ClientHello) => net.Server | null,
  timeoutMs: number,
): void {
  const handshakeListeners = server.listeners('connection') as ConnectionListener[];
  server.removeAllListeners('connection');
  server.on('connection', (socket: net.Socket) => {
    peek(socket, timeoutMs, (hello) => {
      const other = choose(hello);
      if (other) other.emit('connection', socket);
      else for (const listener of handshakeListeners) listener.call(server, socket);
    });
  });
}

function peek(socket: net.Socket, timeoutMs: number, then: (hello: ClientHello) => void): void {
  const chunks: Buffer[] = [];
  let received = 0;
  let needed = 1;
  const timer = setTimeout(() => socket.destroy(), timeoutMs);
  const stop = (): void => {
    clearTimeout(timer);
    socket.off('data', onData);
    socket.off('error', onEnd);
    socket.off('end', onEnd);
  };
  const onEnd = (): void => {
    stop();
    socket.destroy();
  };
  const onData = (chunk: Buffer): void => {
    chunks.push(chunk);
    received += chunk.length;
    if (received < needed) return;
    const data = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    chunks.splice(0, chunks.length, data);
    const result = parseClientHello(data);
    if (result.status === 'incomplete') {
      needed = result.needed;
      return;
    }
    stop();
    if (result.status === 'invalid') {
      socket.destroy();
      return;
    }
    socket.pause();
    socket.unshift(data);
    then(result.hello);
  };
  socket.on('data', onData);
  socket.on('error', onEnd);
  socket.on('end', onEnd);
}
