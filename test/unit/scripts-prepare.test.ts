/**
 * `npm start` runs scripts/prepare.sh first: tsc only when a source or build setting is newer than
 * the last build (a start used to spend ~10 s compiling what had not changed).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const REPO = path.resolve(import.meta.dirname, '..', '..');

test('prepare builds once, then skips tsc until a source changes', (t) => {
  const copy = mkdtempSync(path.join(tmpdir(), 'rg-prepare-'));
  t.after(() => rmSync(copy, { recursive: true, force: true }));
  for (const entry of ['src', 'scripts', 'package.json', 'package-lock.json', 'tsconfig.json']) {
    cpSync(path.join(REPO, entry), path.join(copy, entry), { recursive: true, preserveTimestamps: true });
  }
  // The checkout's packages, each by a link of its own: were `npm ci` to run in the copy, it would
  // remove these links, never the checkout's node_modules behind one link to all of it.
  const modules = path.join(copy, 'node_modules');
  mkdirSync(modules);
  for (const entry of readdirSync(path.join(REPO, 'node_modules'))) {
    if (entry === '.package-lock.json') cpSync(path.join(REPO, 'node_modules', entry), path.join(modules, entry), { preserveTimestamps: true });
    else symlinkSync(path.join(REPO, 'node_modules', entry), path.join(modules, entry));
  }
  const prepare = () => spawnSync('bash', ['scripts/prepare.sh'], { cwd: copy, encoding: 'utf8', timeout: 120_000 });
  const built = () => statSync(path.join(copy, 'dist', 'cli', 'main.js'));

  const first = prepare();
  assert.equal(first.status, 0, first.stderr);
  assert.doesNotMatch(first.stdout + first.stderr, /npm ci|added \d+ packages/, 'the dependencies were already current');
  assert.doesNotMatch(first.stdout, /not rebuilding/);
  assert.equal(built().mode & 0o777, 0o755, 'the CLI is executable, for a link to it on PATH');
  const firstBuild = built().mtimeMs;

  const second = prepare();
  assert.equal(second.status, 0, second.stderr);
  assert.match(second.stdout, /registry-gate: dist\/ is current, not rebuilding/);
  assert.equal(built().mtimeMs, firstBuild);

  // A source edited after the build: built again.
  const later = new Date(Date.now() + 5_000);
  utimesSync(path.join(copy, 'src', 'observe', 'health.ts'), later, later);
  const third = prepare();
  assert.equal(third.status, 0, third.stderr);
  assert.doesNotMatch(third.stdout, /not rebuilding/);
  assert.ok(built().mtimeMs > firstBuild);
});

test('a fresh install is quiet on this Node: no engine or install-script warnings before the proxy\'s first line', (t) => {
  const copy = mkdtempSync(path.join(tmpdir(), 'rg-install-'));
  t.after(() => rmSync(copy, { recursive: true, force: true }));
  for (const entry of ['package.json', 'package-lock.json']) cpSync(path.join(REPO, entry), path.join(copy, entry));
  const install = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: copy, encoding: 'utf8', timeout: 300_000 });
  assert.equal(install.status, 0, install.stderr);
  assert.deepEqual(
    (install.stdout + install.stderr).split('\n').filter((line) => /\bwarn\b/i.test(line)),
    [],
    `npm ci on Node ${process.versions.node} warned`,
  );
});
