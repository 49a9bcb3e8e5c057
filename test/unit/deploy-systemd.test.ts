/**
 * deploy/registry-gate.service as systemd itself judges it (where systemd-analyze is installed):
 * the unit verifies clean, its exposure score stays at most 2.0, and state goes where systemd
 * makes the state directory.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { defaultConfig } from '../../src/config/defaults.js';

const UNIT = path.resolve(import.meta.dirname, '..', '..', 'deploy', 'registry-gate.service');
const analyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
const skip = analyze.error ? 'systemd-analyze is not installed' : false;

function directives(name: string): string[] {
  return readFileSync(UNIT, 'utf8')
    .split('\n')
    .filter((line) => line.startsWith(`${name}=`))
    .map((line) => line.slice(name.length + 1));
}

test('systemd-analyze verify finds nothing to say', { skip }, () => {
  const verified = spawnSync('systemd-analyze', ['verify', UNIT], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(verified.status, 0, verified.stderr);
  assert.equal(verified.stderr.trim(), '');
});

test('systemd-analyze security scores the unit 2.0 or better', { skip }, () => {
  const scored = spawnSync('systemd-analyze', ['security', '--offline=true', '--no-pager', UNIT], { encoding: 'utf8', timeout: 30_000 });
  const m = /Overall exposure level for registry-gate\.service: (\d+\.\d)/.exec(scored.stdout);
  assert.ok(m, scored.stdout + scored.stderr);
  assert.ok(Number(m[1]) <= 2.0, `exposure ${m[1]}:\n${scored.stdout.split('\n').filter((l) => l.includes('✗')).join('\n')}`);
});

test('state goes to the StateDirectory, and the stop timeout leaves room for the drain', () => {
  assert.deepEqual(directives('StateDirectory'), ['registry-gate']);
  assert.ok(directives('Environment').includes('REGGATE_STATEDIR=%S/registry-gate'));
  // ProtectSystem=strict makes everything else read-only: nothing may need writing elsewhere.
  assert.deepEqual(directives('ProtectSystem'), ['strict']);
  assert.deepEqual(directives('ReadWritePaths'), []);
  assert.ok(Number(directives('TimeoutStopSec')[0]) > defaultConfig().drainSeconds + 5);
});
