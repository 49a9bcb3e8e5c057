/** The directory connection pool with stand-in connections: bounds, reuse, and what is never reused. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Client } from 'ldapts';
import { LdapPool } from '../../src/auth/sources/ldap-pool.js';

function fakes() {
  const made: { id: number; unbound: boolean }[] = [];
  const connect = async () => {
    const conn = { id: made.length, unbound: false };
    made.push(conn);
    return { conn, unbind: async () => void (conn.unbound = true) } as unknown as Client;
  };
  const idOf = (c: Client) => (c as unknown as { conn: { id: number } }).conn.id;
  return { made, connect, idOf };
}

test('at most `size` rounds at once; connections are reused, not reopened', async () => {
  const { made, connect } = fakes();
  const pool = new LdapPool(connect, 2);
  let running = 0;
  let peak = 0;
  const round = async () => {
    running++;
    peak = Math.max(peak, running);
    await new Promise((r) => setTimeout(r, 5));
    running--;
    return 'ok';
  };
  assert.deepEqual(await Promise.all(Array.from({ length: 20 }, () => pool.use(round))), Array(20).fill('ok'));
  assert.equal(peak, 2);
  assert.equal(made.length, 2);
  await pool.close();
  assert.ok(made.every((c) => c.unbound), 'closing the pool closes what it kept');
});

test('a connection whose round failed is closed; a failure on a kept one is tried once on a fresh one', async () => {
  const { made, connect, idOf } = fakes();
  const pool = new LdapPool(connect, 1);
  await pool.use(async () => 'warm');
  const seen: number[] = [];
  const answer = await pool.use(async (c) => {
    seen.push(idOf(c));
    if (idOf(c) === 0) throw new Error('connection reset by the server');
    return 'fresh';
  });
  assert.equal(answer, 'fresh');
  assert.deepEqual(seen, [0, 1]);
  assert.equal(made[0]!.unbound, true);
  await assert.rejects(pool.use(async () => Promise.reject(new Error('down'))), /down/, 'a fresh connection failing is the answer');
  assert.equal(made.filter((c) => !c.unbound).length, 0, 'nothing failed is kept');
  await pool.close();
});

test('a connection idle longer than idleMs is closed instead of reused', async () => {
  const { made, connect } = fakes();
  let now = 0;
  const pool = new LdapPool(connect, 1, 1000, () => now);
  await pool.use(async () => 1);
  now = 1001;
  await pool.use(async () => 2);
  assert.equal(made.length, 2);
  assert.equal(made[0]!.unbound, true);
  await pool.close();
});
