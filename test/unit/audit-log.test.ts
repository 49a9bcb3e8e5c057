import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openAuditLog, throttleFailedLogins, type AuditEntry } from '../../src/audit/audit-log.js';
import { createLogger } from '../../src/observe/logger.js';

const entry = (tag: string): AuditEntry => ({ event: 'change', action: 'push', user: 'alice', client: '::1', repository: 'a', tag, status: 201, request: 'r1' });

test('the audit file gets one JSON line per entry and is opened anew on reopen (logrotate, SIGHUP)', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'rg-audit-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'audit.jsonl');
  const audit = openAuditLog(file, createLogger('silent'));
  audit.record(entry('one'));
  await new Promise((r) => setTimeout(r, 50));
  await rename(file, `${file}.1`);
  audit.reopen();
  audit.record(entry('two'));
  await audit.close();
  const rotated = (await readFile(`${file}.1`, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
  const fresh = (await readFile(file, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(rotated.map((l) => l.tag), ['one']);
  assert.deepEqual(fresh.map((l) => l.tag), ['two']);
  assert.match(fresh[0].time, /^\d{4}-\d\d-\d\dT/);
  assert.equal(fresh[0].user, 'alice');
});

test('a name or path with any bytes stays one line, in the file and on stdout, and reads back as it came', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'rg-audit-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const hostile = 'a\nb\r\u001b[31m\u007f\u0085\u2028\u2029\u202e"\\';
  const failed: AuditEntry = { event: 'login-failed', action: 'login', user: hostile, client: '::1', status: 401, reason: 'invalid username or password', request: 'r2' };
  const file = path.join(dir, 'audit.jsonl');
  const audit = openAuditLog(file, createLogger('silent'));
  audit.record(failed);
  await audit.close();
  const chunks: string[] = [];
  const stdout = openAuditLog(null, createLogger('info', { write: (s: string) => chunks.push(s) } as unknown as NodeJS.WritableStream));
  stdout.record(failed);
  for (const text of [await readFile(file, 'utf8'), chunks.join('')]) {
    const lines = text.split('\n').filter((l) => l !== '');
    assert.equal(lines.length, 1, JSON.stringify(text));
    assert.ok(!/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202e]/.test(lines[0]!), `raw control or separator in ${JSON.stringify(lines[0])}`);
    const parsed = JSON.parse(lines[0]!) as { user?: string; audit?: { user: string } };
    assert.equal(parsed.user ?? parsed.audit?.user, hostile);
  }
});

test('failed logins of one user from one client are summed up per interval; changes and other pairs keep their lines', async () => {
  const lines: AuditEntry[] = [];
  const sink = throttleFailedLogins({ record: (e) => void lines.push(e), reopen() {}, close: async () => {} }, 60_000);
  const failed = (user: string, client: string, request: string): AuditEntry => ({ event: 'login-failed', action: 'login', user, client, status: 401, reason: 'invalid username or password', request });
  for (let i = 0; i < 100; i++) sink.record(failed('alice', '198.51.100.7', `r${i}`));
  sink.record(failed('alice', '203.0.113.9', 'other-client'));
  sink.record(failed('bob', '198.51.100.7', 'other-user'));
  sink.record(entry('a-change'));
  assert.deepEqual(lines.map((l) => [l.event, l.user, l.client, l.request, l.repeated]), [
    ['login-failed', 'alice', '198.51.100.7', 'r0', undefined],
    ['login-failed', 'alice', '203.0.113.9', 'other-client', undefined],
    ['login-failed', 'bob', '198.51.100.7', 'other-user', undefined],
    ['change', 'alice', '::1', 'r1', undefined],
  ]);
  sink.flush();
  assert.deepEqual(lines.slice(4).map((l) => [l.user, l.client, l.request, l.repeated]), [['alice', '198.51.100.7', 'r99', 99]]);
  sink.record(failed('alice', '198.51.100.7', 'next-interval'));
  assert.equal(lines.at(-1)!.request, 'next-interval', 'a new interval starts with a line at once');
  await sink.close();
});
