import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FileKeyStore, keyIdOf, loadOrCreateSigningKey, SIGNING_KEY_FILE } from '../../src/state/signing-key.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'rg-key-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('creates a 32-byte key in a 0700 directory with a 0600 file, and loads the same key again', async (t) => {
  const base = await tempDir(t);
  const stateDir = path.join(base, 'nested', 'state');
  const key = await loadOrCreateSigningKey(stateDir);
  assert.equal(key.secret.length, 32);
  assert.match(key.id, /^[0-9a-f]{16}$/);
  assert.equal(key.id, keyIdOf(key.secret));
  assert.equal((await stat(stateDir)).mode & 0o777, 0o700);
  assert.equal((await stat(path.join(stateDir, SIGNING_KEY_FILE))).mode & 0o777, 0o600);

  const again = await loadOrCreateSigningKey(stateDir);
  assert.equal(again.id, key.id);
  assert.ok(again.secret.equals(key.secret));
  assert.deepEqual(await readdir(stateDir), [SIGNING_KEY_FILE], 'no temp files left behind');
});

test('different directories get different keys', async (t) => {
  const base = await tempDir(t);
  const a = await loadOrCreateSigningKey(path.join(base, 'a'));
  const b = await loadOrCreateSigningKey(path.join(base, 'b'));
  assert.notEqual(a.id, b.id);
});

test('concurrent loads in one process agree on one key', async (t) => {
  const dir = await tempDir(t);
  const keys = await Promise.all(Array.from({ length: 20 }, () => new FileKeyStore(dir).load()));
  assert.equal(new Set(keys.map((k) => k.id)).size, 1);
  assert.deepEqual(await readdir(dir), [SIGNING_KEY_FILE]);
});

test('replicas (separate processes) starting together on a shared directory end up with one key', async (t) => {
  const dir = await tempDir(t);
  // All children wait for the same instant, so they really race instead of starting one by one.
  const startAt = Date.now() + 2500;
  const script = `import { loadOrCreateSigningKey } from ${JSON.stringify(path.join(root, 'src/state/signing-key.ts'))};
    await new Promise((r) => setTimeout(r, ${startAt} - Date.now()));
    const key = await loadOrCreateSigningKey(process.argv[1]); process.stdout.write(key.id);`;
  const runs = Array.from(
    { length: 6 },
    () =>
      new Promise<string>((resolve, reject) => {
        const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, dir], { cwd: root });
        let out = '';
        let err = '';
        child.stdout.on('data', (d) => (out += d));
        child.stderr.on('data', (d) => (err += d));
        child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(err))));
      }),
  );
  const ids = await Promise.all(runs);
  assert.equal(ids.length, 6);
  assert.equal(new Set(ids).size, 1, ids.join(' '));
  const stored = JSON.parse(await readFile(path.join(dir, SIGNING_KEY_FILE), 'utf8'));
  assert.equal(keyIdOf(Buffer.from(stored.secret, 'base64')), ids[0]);
});

test('a corrupt key file is an error that says what to do, never silently replaced', async (t) => {
  const dir = await tempDir(t);
  await writeFile(path.join(dir, SIGNING_KEY_FILE), '{"version":1,"secret":"c2hvcnQ="}');
  await assert.rejects(loadOrCreateSigningKey(dir), /corrupt.*remove it/);
  assert.equal(await readFile(path.join(dir, SIGNING_KEY_FILE), 'utf8'), '{"version":1,"secret":"c2hvcnQ="}');
});
