/**
 * What a loop replaying one wrong password costs: 3,000 identical wrong logins from one client
 * through the real proxy are cut to 429 after a few, and leave a few audit lines, not 3,000.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { readFile } from 'node:fs/promises';
import { startPlainStack } from '../harness/stack.js';
import { makeTempDir, removeTempDir } from '../harness/tmp.js';

test('3,000 identical wrong passwords from one client: 429 after a few, a handful of audit lines', async (t) => {
  const work = await makeTempDir('login-noise');
  const auditFile = path.join(work, 'audit.jsonl');
  const stack = await startPlainStack({ users: { alice: 'the-real-one' }, config: { audit: { file: auditFile }, loginLimits: { failuresPerUser: 5 } } });
  t.after(async () => {
    await stack.stop();
    await removeTempDir(work);
  });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  const authorization = `Basic ${Buffer.from('alice:one-wrong-password').toString('base64')}`;
  const statuses = new Map<number, number>();
  for (let i = 0; i < 3000; i++) {
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.get(`${stack.proxy.url}/v2/alice/app/tags/list`, { agent, headers: { authorization } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      });
      req.on('error', reject);
    });
    statuses.set(status, (statuses.get(status) ?? 0) + 1);
  }
  assert.ok((statuses.get(429) ?? 0) >= 2900, JSON.stringify([...statuses]));
  assert.ok((statuses.get(401) ?? 0) <= 10, JSON.stringify([...statuses]));
  await stack.proxy.stop();
  const lines = (await readFile(auditFile, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { event: string; user: string; repeated?: number });
  assert.ok(lines.length <= 30, `${lines.length} audit lines`);
  assert.ok(lines.every((l) => l.event === 'login-failed' && l.user === 'alice'));
  // A line is one failure; a summary line stands for the `repeated` failures after the first.
  const counted = lines.reduce((sum, l) => sum + (l.repeated ?? 1), 0);
  assert.equal(counted, 3000, 'the summary lines account for every failure');
});
