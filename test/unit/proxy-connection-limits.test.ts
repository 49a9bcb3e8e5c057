import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { limitConnections } from '../../src/proxy/connection-limits.js';
import { PeerTrust } from '../../src/proxy/client-view.js';
import { createLogger } from '../../src/observe/logger.js';

/** Resolves true when the server closed the connection, false when it is still open after `ms`. */
function closedWithin(socket: net.Socket, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

async function serve(trusted: string[], perClient: number) {
  const server = http.createServer((_req, res) => res.end('ok'));
  limitConnections(server, { max: 1000, perClient, trust: new PeerTrust(trusted), logger: createLogger('silent') });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const connect = async () => {
    const socket = net.connect(port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    return socket;
  };
  return { server, connect };
}

test('one client may hold maxConnectionsPerClient connections; the next is closed at once; a closed one frees its place', async (t) => {
  const { server, connect } = await serve([], 3);
  const sockets: net.Socket[] = [];
  t.after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  for (let i = 0; i < 3; i++) sockets.push(await connect());
  const extra = await connect();
  sockets.push(extra);
  assert.equal(await closedWithin(extra, 1000), true, 'the fourth connection was kept');
  for (const s of sockets.slice(0, 3)) assert.equal(s.destroyed, false);

  sockets[0]!.destroy();
  await new Promise((r) => setTimeout(r, 100));
  const again = await connect();
  sockets.push(again);
  assert.equal(await closedWithin(again, 300), false, 'a freed place is usable again');
});

test('a trusted load balancer is not capped per client', async (t) => {
  const { server, connect } = await serve(['127.0.0.1/32'], 2);
  const sockets: net.Socket[] = [];
  t.after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  for (let i = 0; i < 6; i++) sockets.push(await connect());
  assert.equal(await closedWithin(sockets[5]!, 300), false);
});
