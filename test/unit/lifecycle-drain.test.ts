import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Server, Socket } from 'node:net';
import { Drain } from '../../src/lifecycle/drain.js';
import { registryParams } from '../../src/registry/inputs.js';
import { classifyRequest, type Route } from '../../src/registry/route.js';
import { createLogger } from '../../src/observe/logger.js';

const CLIENT = '192.0.2.1';
const DIGEST = `sha256:${'a'.repeat(64)}`;

/** A listener, its connections and requests as the drain sees them: events and a few fields. */
function harness() {
  const lines: string[] = [];
  const logger = createLogger('info', { write: (l: string) => lines.push(l) } as unknown as NodeJS.WritableStream);
  const drain = new Drain({ drainSeconds: 5, logger });
  const server = Object.assign(new EventEmitter(), { close: () => {} });
  drain.watch(server as unknown as Server);
  const connect = () => {
    const fake: EventEmitter & { ended: boolean; end?: () => void; destroy?: () => void } = Object.assign(new EventEmitter(), { ended: false });
    fake.end = fake.destroy = () => {
      fake.ended = true;
      fake.emit('close');
    };
    server.emit('connection', fake);
    return fake as unknown as Socket & { ended: boolean };
  };
  /** One request on `socket`, answered with `status`. */
  const exchange = (socket: Socket, method: string, path: string, status: number) => {
    const req = Object.assign(new EventEmitter(), { socket, method }) as unknown as IncomingMessage;
    const res = Object.assign(new EventEmitter(), { statusCode: status, shouldKeepAlive: true }) as unknown as ServerResponse;
    drain.admit(req, res, () => ({ method, path, client: CLIENT, user: 'alice' }), () => {});
    const route = classifyRequest(method, path, registryParams(''));
    if (route.kind === 'repository') drain.repositoryRequest(req, res, CLIENT, route as Route & { kind: 'repository' });
    Object.assign(res, { writableFinished: true });
    res.emit('finish');
    res.emit('close');
    return res;
  };
  return { drain, connect, exchange, lines };
}

test('while serving, nothing is refused', () => {
  const { drain } = harness();
  assert.equal(drain.continues(CLIENT, 'any/repo'), true);
  assert.equal(drain.continues('198.51.100.9', null), true);
});

test('draining: the push under way goes on over new connections until its manifest is in; everything else is refused', async () => {
  const { drain, connect, exchange } = harness();
  const a = connect();
  exchange(a, 'HEAD', `/v2/team/app/blobs/${DIGEST}`, 404);
  exchange(a, 'POST', '/v2/team/app/blobs/uploads/', 202);
  const stopped = drain.drain();

  assert.equal(drain.continues(CLIENT, 'team/app'), true, 'the push itself');
  assert.equal(drain.continues(CLIENT, null), true, 'its ping and token requests');
  assert.equal(drain.continues(CLIENT, 'team/other'), false, 'another repository');
  assert.equal(drain.continues('198.51.100.9', null), false, 'another client');

  const b = connect();
  exchange(b, 'PATCH', '/v2/team/app/blobs/uploads/0b0e0c5a-3d3c-4e0e-9c47-0d0f7a4d5e6f', 202);
  const commit = exchange(b, 'PUT', '/v2/team/app/blobs/uploads/0b0e0c5a-3d3c-4e0e-9c47-0d0f7a4d5e6f', 201);
  assert.equal(commit.shouldKeepAlive, true, 'a connection the push uses stays open');
  assert.equal(drain.continues(CLIENT, 'team/app'), true, 'blobs are in, the manifest is still to come');

  exchange(b, 'PUT', '/v2/team/app/manifests/v1', 201);
  assert.equal(drain.continues(CLIENT, 'team/app'), false, 'the push is done');
  await stopped;
});

test('draining: an answer on a connection no push uses says Connection: close', () => {
  const { drain, connect, exchange } = harness();
  void drain.drain();
  const res = exchange(connect(), 'GET', '/readyz', 503);
  assert.equal(res.shouldKeepAlive, false);
});

test('a second drain() cuts what runs and names it', async () => {
  const { drain, connect, lines } = harness();
  const socket = connect();
  const req = Object.assign(new EventEmitter(), { socket, method: 'PATCH' }) as unknown as IncomingMessage;
  const res = Object.assign(new EventEmitter(), { statusCode: 200, shouldKeepAlive: true }) as unknown as ServerResponse;
  let cut = false;
  drain.admit(req, res, () => ({ method: 'PATCH', path: '/v2/team/app/blobs/uploads/x', client: CLIENT, user: 'alice' }), () => (cut = true));
  const stopped = drain.drain();
  await drain.drain();
  await stopped;
  assert.equal(cut, true);
  assert.equal(socket.ended, true);
  await new Promise((r) => setTimeout(r, 300));
  assert.match(lines.join(''), /a second signal; cut 1 request\(s\) in flight: PATCH \/v2\/team\/app\/blobs\/uploads\/x from 192\.0\.2\.1 \(alice\)/);
});

test('draining: an upload session the client abandoned does not hold the push after its manifest', async () => {
  const { drain, connect, exchange } = harness();
  const a = connect();
  exchange(a, 'POST', '/v2/team/app/blobs/uploads/', 202);
  exchange(a, 'POST', '/v2/team/app/blobs/uploads/', 202);
  exchange(a, 'PUT', '/v2/team/app/blobs/uploads/0b0e0c5a-3d3c-4e0e-9c47-0d0f7a4d5e6f', 201);
  const stopped = drain.drain();
  assert.equal(drain.continues(CLIENT, 'team/app'), true);
  exchange(a, 'PUT', '/v2/team/app/manifests/v1', 201);
  assert.equal(drain.continues(CLIENT, 'team/app'), false);
  await stopped;
});
