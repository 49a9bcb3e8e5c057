import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openAuditLog, type AuditEntry } from '../../src/audit/audit-log.js';
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
