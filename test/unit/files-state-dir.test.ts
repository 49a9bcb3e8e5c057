import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { prepareStateDir, StateDirError } from '../../src/files/state-dir.js';

test('stateDir: created with its parents (0700); a file, /proc or an unwritable place is a one-line reason', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'rg-statedir-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const nested = path.join(dir, 'a', 'b');
  await prepareStateDir(nested);
  assert.equal((await stat(nested)).mode & 0o777, 0o700);
  await prepareStateDir(nested);

  const file = path.join(dir, 'plain-file');
  await writeFile(file, 'x');
  await assert.rejects(prepareStateDir(file), (err: Error) => err instanceof StateDirError && /^stateDir: .*plain-file is not a directory;/.test(err.message));
  await assert.rejects(prepareStateDir(path.join(file, 'under')), (err: Error) => err instanceof StateDirError && /ENOTDIR/.test(err.message));
  // Node's recursive mkdir never returns here.
  await assert.rejects(prepareStateDir('/proc/registry-gate-test'), (err: Error) => err instanceof StateDirError && /^stateDir: cannot use \/proc\/registry-gate-test \(ENOENT\)/.test(err.message));
});

test('serve with an unusable stateDir exits 2 with the reason and no stack trace', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'rg-statedir-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const config = path.join(dir, 'proxy.config.json');
  await writeFile(config, JSON.stringify({ listen: '127.0.0.1:0', tls: { mode: 'off' }, auth: { mode: 'none' }, stateDir: '/proc/x', log: { level: 'silent' } }));
  const res = spawnSync(process.execPath, ['dist/cli/main.js', 'serve', '--config', config], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(res.status, 2, res.stderr);
  assert.equal(res.stderr, 'registry-gate: stateDir: cannot use /proc/x (ENOENT); choose a directory the proxy may create and write, e.g. ./data\n');
});
