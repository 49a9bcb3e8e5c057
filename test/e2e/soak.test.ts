/**
 * The short form of `npm run soak` (bench/lib/soak.ts): 30 s of mixed load with a registry
 * restart, a Redis kill and 500 aborted uploads. Nothing a client saw committed may be missing,
 * and the proxy's descriptors must come back once the load is gone.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FD_SLACK, formatSoak, runSoak } from '../../bench/lib/soak.js';

test('soak, short form: 30 s of load through a registry restart and a Redis kill loses no commit and leaks no descriptor', async () => {
  const report = await runSoak({ seconds: 30, aborts: 500, registryRestarts: 1, redisKills: 1 });
  const text = formatSoak(report);
  assert.equal(report.faults.length, 2, text);
  assert.ok(report.commits > 100, text);
  assert.equal(report.aborted, 500, text);
  assert.equal(report.lostCommits, 0, text);
  assert.ok(report.fds.final <= report.fds.baseline + FD_SLACK, text);
  assert.ok(!Object.keys(report.proxyWarnings).some((msg) => msg.includes('failed inside the proxy')), text);
});
