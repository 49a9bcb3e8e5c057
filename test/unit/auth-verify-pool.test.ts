import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, rm, symlink, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { defaultPoolSize, resolveWorkerEntry, VerifyBusyError, VerifyPool, VerifyPoolClosedError } from '../../src/auth/verify-pool.js';
import { NEEDS_APACHE_HTPASSWD } from '../harness/apache.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function runNode(args: string[], cwd: string, timeoutMs = 20_000): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, args, { cwd });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}

test('compares $2y$ hashes written by the real htpasswd, in a worker', NEEDS_APACHE_HTPASSWD, async (t) => {
  const pool = new VerifyPool({ size: 2 });
  t.after(() => pool.close());
  const line = execFileSync('htpasswd', ['-nbB', '-C', '5', 'alice', 'wonderland'], { encoding: 'utf8' }).trim();
  const hash = line.slice(line.indexOf(':') + 1);
  assert.equal(await pool.compare('wonderland', hash), true);
  assert.equal(await pool.compare('Wonderland', hash), false);
  assert.equal(await pool.compare('x', 'not a bcrypt hash'), false);
  const made = await pool.hash('pw', 4);
  assert.match(made, /^\$2[aby]\$04\$/);
  assert.equal(await pool.compare('pw', made), true);
});

test('under tsx the worker entry resolves to the .ts file next to the pool', () => {
  const entry = resolveWorkerEntry();
  assert.equal(entry.typescript, true);
  assert.equal(fileURLToPath(entry.url), path.join(root, 'src/auth/verify-worker.ts'));
});

test('a compiled .js worker next to the module wins; no worker at all is a clear error', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'rg-entry-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const moduleUrl = pathToFileURL(path.join(dir, 'verify-pool.js')).href;
  assert.throws(() => resolveWorkerEntry(moduleUrl), /verify worker not found/);
  await writeFile(path.join(dir, 'verify-worker.ts'), '');
  assert.equal(resolveWorkerEntry(moduleUrl).typescript, true);
  await writeFile(path.join(dir, 'verify-worker.js'), '');
  const entry = resolveWorkerEntry(moduleUrl);
  assert.equal(entry.typescript, false);
  assert.equal(fileURLToPath(entry.url), path.join(dir, 'verify-worker.js'));
});

test('compiled with tsc, the pool runs under plain node (the dist/ layout)', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'rg-dist-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const out = path.join(dir, 'dist');
  execFileSync(
    process.execPath,
    [
      path.join(root, 'node_modules/typescript/bin/tsc'),
      '--outDir', out, '--rootDir', path.join(root, 'src'),
      '--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--target', 'ES2022', '--strict', '--skipLibCheck',
      path.join(root, 'src/auth/verify-pool.ts'),
      path.join(root, 'src/auth/verify-worker.ts'),
    ],
    { cwd: root, stdio: 'pipe' },
  );
  await writeFile(path.join(dir, 'package.json'), '{"type":"module"}');
  await symlink(path.join(root, 'node_modules'), path.join(dir, 'node_modules'));
  await mkdir(path.join(dir, 'check'));
  const script = `import { VerifyPool, resolveWorkerEntry } from '../dist/auth/verify-pool.js';
    import bcrypt from 'bcryptjs';
    const pool = new VerifyPool();
    const hash = bcrypt.hashSync('pw', 4);
    console.log(JSON.stringify({ typescript: resolveWorkerEntry(new URL('../dist/auth/verify-pool.js', import.meta.url).href).typescript,
      good: await pool.compare('pw', hash), bad: await pool.compare('nope', hash) }));`;
  await writeFile(path.join(dir, 'check', 'run.mjs'), script);
  // no --import tsx: exactly how production runs
  const result = await runNode([path.join(dir, 'check', 'run.mjs')], dir);
  assert.equal(result.code, 0, result.stderr);
  assert.deepEqual(JSON.parse(result.stdout), { typescript: false, good: true, bad: false });
});

// Counted, not timed: bcrypt on the main thread would let no timer fire until it is done,
// however fast or loaded the machine.
test('a cost-12 check leaves the event loop running', async (t) => {
  const pool = new VerifyPool({ size: 1 });
  t.after(() => pool.close());
  const hash = await pool.hash('correct horse', 12);
  await pool.compare('warm-up', await pool.hash('x', 4));

  let ticks = 0;
  const timer = setInterval(() => ticks++, 5);
  const ok = await pool.compare('correct horse', hash);
  clearInterval(timer);

  assert.equal(ok, true);
  assert.ok(ticks >= 5, `only ${ticks} timer ticks ran during a cost-12 check`);
});

test('a full queue answers busy immediately instead of queueing without bound', async (t) => {
  const pool = new VerifyPool({ size: 1, maxQueue: 2 });
  t.after(() => pool.close());
  const hash = await pool.hash('pw', 10);
  const accepted = [pool.compare('pw', hash), pool.compare('pw', hash), pool.compare('pw', hash)];
  assert.equal(pool.pending, 3);
  await assert.rejects(pool.compare('pw', hash), VerifyBusyError);
  assert.deepEqual(await Promise.all(accepted), [true, true, true]);
  assert.equal(pool.pending, 0);
  assert.equal(await pool.compare('pw', hash), true);
});

test('clients take turns: a second client is served before the first one\'s backlog', async (t) => {
  const pool = new VerifyPool({ size: 1, maxQueue: 64, maxQueuePerClient: 4 });
  t.after(() => pool.close());
  const hash = await pool.hash('pw', 8);
  const order: string[] = [];
  const check = (client: string, n: number) => pool.compare('pw', hash, client).then(() => order.push(`${client}${n}`));
  const flood = [1, 2, 3, 4, 5].map((n) => check('a', n));
  await assert.rejects(pool.compare('pw', hash, 'a'), VerifyBusyError, 'one client holds at most 4 waiting places');
  const others = [check('b', 1), check('c', 1)];
  await Promise.all([...flood, ...others]);
  assert.deepEqual(order, ['a1', 'a2', 'b1', 'c1', 'a3', 'a4', 'a5']);
});

test('a full queue makes the longest line give way to a client with fewer waiting', async (t) => {
  const pool = new VerifyPool({ size: 1, maxQueue: 4, maxQueuePerClient: 4 });
  t.after(() => pool.close());
  const hash = await pool.hash('pw', 8);
  const a = [1, 2, 3, 4, 5].map(() => pool.compare('pw', hash, 'a').then(() => 'ok', (err: Error) => err.constructor.name));
  const b = pool.compare('pw', hash, 'b');
  assert.equal(pool.pending, 5);
  assert.equal(await b, true);
  assert.deepEqual(await Promise.all(a), ['ok', 'ok', 'ok', 'ok', 'VerifyBusyError']);
  const c = [pool.compare('pw', hash, 'c'), pool.compare('pw', hash, 'c')];
  assert.deepEqual(await Promise.all(c), [true, true], 'an evicted client does not hold places');
});

test('close() rejects waiting and later checks', async () => {
  const pool = new VerifyPool({ size: 1 });
  const hash = await pool.hash('pw', 10);
  const running = assert.rejects(pool.compare('pw', hash), VerifyPoolClosedError);
  const waiting = assert.rejects(pool.compare('pw', hash), VerifyPoolClosedError);
  await pool.close();
  await running;
  await waiting;
  await assert.rejects(pool.compare('pw', hash), VerifyPoolClosedError);
});

test('idle workers do not keep the process alive; a running check does', async () => {
  const script = `import { VerifyPool } from ${JSON.stringify(path.join(root, 'src/auth/verify-pool.ts'))};
    const pool = new VerifyPool({ size: 2 });
    const hash = await pool.hash('pw', 4);
    // nothing but the pending check keeps the loop alive here
    pool.compare('pw', hash).then((ok) => console.log('result', ok));`;
  const result = await runNode(['--import', 'tsx', '--input-type=module', '-e', script], root);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout.trim(), 'result true');
  assert.ok(result.ms < 10_000);
});

test('the pool leaves one core to the proxy and never grows past four workers', () => {
  assert.deepEqual([1, 2, 3, 4, 8, 64].map((cores) => defaultPoolSize(cores)), [1, 1, 2, 3, 4, 4]);
});

test('a worker idle for idleMs is stopped (its memory given back) and the next check starts one again', async (t) => {
  const pool = new VerifyPool({ size: 1, idleMs: 300 });
  t.after(() => pool.close());
  const hash = await pool.hash('pw', 4);
  assert.equal(pool.workers, 1);
  // Busy again before the idle time is over: the same worker stays.
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(await pool.compare('pw', hash), true);
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(pool.workers, 1);
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(pool.workers, 0);
  assert.equal(await pool.compare('pw', hash), true);
  assert.equal(await pool.compare('nope', hash), false);
  assert.equal(pool.workers, 1);
});
