import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { freePort } from '../harness/ports.js';

test('freePort never hands out the same port twice in one process, and each one can be listened on', async () => {
  const ports: number[] = [];
  for (let i = 0; i < 300; i++) ports.push(await freePort());
  assert.equal(new Set(ports).size, ports.length);
  const last = ports.at(-1)!;
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(last, '127.0.0.1', resolve));
  await new Promise((r) => server.close(r));
});
