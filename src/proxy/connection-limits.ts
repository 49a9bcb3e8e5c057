/**
 * Caps on open connections, overall and per client address, counted when a connection is
 * accepted (before TLS): a client holding a thousand half-sent requests must not take the file
 * descriptors that everybody else's pushes need. A load balancer in `trustedProxies` carries
 * many clients on its address and is not capped per client.
 */
import type { Server } from 'node:net';
import type { Logger } from '../observe/logger.js';
import type { PeerTrust } from './client-view.js';

const REFUSAL_LOG_INTERVAL_MS = 60_000;

export function limitConnections(server: Server, opts: { max: number; perClient: number; trust: PeerTrust; logger: Logger }): void {
  server.maxConnections = opts.max;
  const open = new Map<string, number>();
  let lastLogged = 0;
  let refusedSinceLog = 0;
  server.on('connection', (socket) => {
    const address = socket.remoteAddress ?? '';
    if (opts.trust.trusts(address)) return;
    const count = (open.get(address) ?? 0) + 1;
    if (count > opts.perClient) {
      socket.destroy();
      refusedSinceLog++;
      if (Date.now() - lastLogged > REFUSAL_LOG_INTERVAL_MS) {
        opts.logger.warn(
          { client: address, refused: refusedSinceLog },
          `refusing connections from ${address}: it holds ${opts.perClient} already (limits.maxConnectionsPerClient)`,
        );
        lastLogged = Date.now();
        refusedSinceLog = 0;
      }
      return;
    }
    open.set(address, count);
    socket.once('close', () => {
      const left = (open.get(address) ?? 1) - 1;
      if (left > 0) open.set(address, left);
      else open.delete(address);
    });
  });
}
