/**
 * Idle keep-alive TLS connections held by the proxy: each makes one request (so it is a
 * keep-alive HTTP connection, not a half-open handshake), then stays open while the proxy's
 * resident memory is read. The connections come from many 127.0.0.x addresses, as many clients
 * would: one address may hold only limits.maxConnectionsPerClient (512) of them.
 */
import net from 'node:net';
import tls from 'node:tls';
import { statusKb } from '../../test/harness/process.js';
import { loopbackClient } from './loopback.js';

export const IDLE_PER_ADDRESS = 500;
const IN_FLIGHT = 64;

export interface IdleResult {
  held: number;
  rssBeforeMiB: number;
  rssMiB: number;
}

function rssMiB(pid: number): number {
  return statusKb(pid, 'VmRSS') / 1024;
}

/** Opens `count` connections to 127.0.0.1:`port` trusting `ca`, measures, closes them all. */
export async function holdIdleConnections(port: number, ca: string, count: number, pid: number): Promise<IdleResult> {
  const rssBeforeMiB = rssMiB(pid);
  const sockets: tls.TLSSocket[] = [];
  const open = (i: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const tcp = net.connect({ host: '127.0.0.1', port, localAddress: loopbackClient(i, IDLE_PER_ADDRESS) });
      const socket = tls.connect({ socket: tcp, ca, servername: 'localhost' }, () => {
        socket.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n');
      });
      let answer = '';
      const onData = (chunk: Buffer): void => {
        answer += chunk.toString('latin1');
        if (!answer.includes('\r\n\r\n') || !answer.includes('{"status":"ok"}')) return;
        socket.off('data', onData);
        sockets.push(socket);
        resolve();
      };
      socket.on('data', onData);
      socket.once('error', reject);
      socket.once('close', () => reject(new Error(`connection ${i} closed before its answer`)));
    });
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) await open(next++);
  };
  try {
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
    // Give the proxy a moment to settle (and the garbage collector its turn) before reading RSS.
    await new Promise((r) => setTimeout(r, 2_000));
    const held = sockets.filter((s) => !s.destroyed).length;
    return { held, rssBeforeMiB, rssMiB: rssMiB(pid) };
  } finally {
    for (const s of sockets) s.destroy();
  }
}
