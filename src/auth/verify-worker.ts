/**
 * Worker-thread side of the verify pool: bcrypt is pure CPU, and bcryptjs's async API only slices
 * the work on the calling thread (8 concurrent cost-10 checks stalled the loop ~0.5 s), so the
 * main thread must not run it at all.
 */
import { parentPort } from 'node:worker_threads';
import bcrypt from 'bcryptjs';
import type { WorkerReply, WorkerRequest } from './verify-protocol.js';

const port = parentPort;
if (!port) throw new Error('verify-worker must run in a worker thread');

port.on('message', (request: WorkerRequest) => {
  let reply: WorkerReply;
  try {
    reply =
      request.op === 'compare'
        ? { id: request.id, ok: true, value: bcrypt.compareSync(request.password, request.hash) }
        : { id: request.id, ok: true, value: bcrypt.hashSync(request.password, request.cost) };
  } catch (err) {
    reply = { id: request.id, ok: false, error: err instanceof Error ? err.message : String(err) };
  }
  port.postMessage(reply);
});
