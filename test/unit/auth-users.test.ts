import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import bcrypt from 'bcryptjs';
import { createLogger } from '../../src/observe/logger.js';
import { bcryptCost } from '../../src/auth/htpasswd.js';
import { dummyCost, makeDummyHash, UserStore, type UserStoreOptions } from '../../src/auth/users.js';
import { VerifyPool } from '../../src/auth/verify-pool.js';
import { HtpasswdSource } from '../../src/auth/sources/htpasswd.js';
import { Identifier } from '../../src/auth/identify.js';

/** The htpasswd source in the identify chain, limits off: what remembers and merges its checks. */
const chainOf = (store: UserStore, cacheMs?: number) => new Identifier([new HtpasswdSource(store, cacheMs)], { enabled: false, failuresPerUser: 5, failuresPerClient: 30, windowSeconds: 900, maxBackoffSeconds: 900, checksPerSecondPerUser: 1 });
const loginOk = async (chain: Identifier, user: string, password: string) => (await chain.login(user, password, '192.0.2.1')).ok;
import { NEEDS_APACHE_HTPASSWD } from '../harness/apache.js';

type LogLine = { level: number; msg: string; [key: string]: unknown };

function captureLogger() {
  const lines: LogLine[] = [];
  const raw: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) {
        raw.push(line);
        lines.push(JSON.parse(line));
      }
      done();
    },
  });
  return { logger: createLogger('debug', stream), lines, raw };
}

/** bcrypt in the test thread, counting calls; optionally held until released. */
function countingChecker() {
  const checker = {
    calls: [] as string[],
    hold: null as Promise<void> | null,
    async compare(password: string, hash: string) {
      checker.calls.push(hash);
      if (checker.hold) await checker.hold;
      return bcrypt.compareSync(password, hash);
    },
  };
  return checker;
}

const H = {
  alice: bcrypt.hashSync('wonderland', 4),
  bob: bcrypt.hashSync('builder', 4),
  carol: bcrypt.hashSync('singer', 4),
};

async function setup(t: TestContext, content: string | null, options: Partial<UserStoreOptions> = {}) {
  const dir = await mkdtemp(path.join(tmpdir(), 'rg-users-'));
  const file = path.join(dir, 'htpasswd');
  if (content !== null) await writeFile(file, content);
  const log = captureLogger();
  const checker = countingChecker();
  const changes: number[] = [];
  const store = await UserStore.open(file, {
    logger: log.logger,
    pool: options.pool ?? checker,
    debounceMs: 20,
    pollIntervalMs: 60_000,
    onChange: (c) => changes.push(c.users),
    ...options,
  });
  t.after(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  return { dir, file, store, log, checker, changes };
}

async function waitFor(condition: () => boolean, what: string, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** How editors and `passwd` save: write elsewhere, rename over. */
async function replaceByRename(file: string, content: string) {
  const temp = `${file}.tmp-${Math.random().toString(36).slice(2)}`;
  await writeFile(temp, content);
  await rename(temp, file);
}

test('loads the file and verifies passwords, including real `htpasswd -B` lines', NEEDS_APACHE_HTPASSWD, async (t) => {
  const apache = execFileSync('htpasswd', ['-nbB', '-C', '5', 'dave', 'd4ve'], { encoding: 'utf8' }).trim();
  const { store } = await setup(t, `alice:${H.alice}\n${apache}\n`, { pool: new VerifyPool() });
  assert.equal(store.userCount(), 2);
  assert.equal(await store.verify('alice', 'wonderland'), true);
  assert.equal(await store.verify('alice', 'wrong'), false);
  assert.equal(await store.verify('dave', 'd4ve'), true);
  assert.equal(await store.verify('nobody', 'wonderland'), false);
  assert.equal(await store.verify('', ''), false);
});

test('unknown users are checked against a dummy hash of the typical cost (no timing oracle)', async (t) => {
  const fake12 = (c: string) => `$2y$12$${c.repeat(53)}`;
  const content = `a:${fake12('a')}\nb:${fake12('b')}\nc:${bcrypt.hashSync('x', 4)}\n`;
  const { store, checker } = await setup(t, content);
  checker.calls.length = 0;
  // the fake pool hashes in-thread, so only look at what it was asked
  checker.compare = async (_p: string, hash: string) => {
    checker.calls.push(hash);
    return false;
  };
  assert.equal(await store.verify('ghost', 'pw'), false);
  assert.equal(checker.calls.length, 1, 'an unknown user still costs one bcrypt check');
  assert.equal(bcryptCost(checker.calls[0]!), 12);
  assert.doesNotMatch(checker.calls[0]!, /^\$2y\$12\$(a|b)+$/);
});

// No timing oracle: an unknown user costs one bcrypt compare at the file's cost, like a known one
// (asserted on the work done, not on a stopwatch, so a loaded machine cannot make it flaky).
test('unknown users are checked against a dummy hash of the same cost as known ones', async (t) => {
  const hash = bcrypt.hashSync('pw', 6);
  const { store, checker } = await setup(t, `alice:${hash}\n`);
  assert.equal(await store.verify('alice', 'wrong-password'), false);
  assert.equal(await store.verify('ghost', 'wrong-password'), false);
  assert.equal(checker.calls.length, 2);
  const [known, unknown] = checker.calls as [string, string];
  assert.equal(known, hash);
  assert.notEqual(unknown, hash);
  assert.equal(bcryptCost(unknown), bcryptCost(known));
});

test('dummy hashes use the highest cost in the table', () => {
  const dummy = makeDummyHash(7);
  assert.equal(bcryptCost(dummy), 7);
  assert.notEqual(makeDummyHash(7), dummy);
  assert.equal(bcrypt.compareSync('', dummy), false);
  assert.equal(dummyCost([]), 10);
  assert.equal(dummyCost([bcrypt.hashSync('a', 4), bcrypt.hashSync('a', 5), bcrypt.hashSync('a', 4)]), 5);
  assert.equal(dummyCost([bcrypt.hashSync('a', 6), bcrypt.hashSync('a', 4), bcrypt.hashSync('a', 4)]), 6);
});

test('in the identify chain: successful checks are remembered; failures are not; the TTL ends the entry', async (t) => {
  const { store, checker } = await setup(t, `alice:${H.alice}\n`);
  const chain = chainOf(store, 150);
  assert.equal(await loginOk(chain, 'alice', 'wonderland'), true);
  assert.equal(await loginOk(chain, 'alice', 'wonderland'), true);
  assert.equal(await loginOk(chain, 'alice', 'wonderland'), true);
  assert.equal(checker.calls.length, 1);
  assert.equal(await loginOk(chain, 'alice', 'wrong'), false);
  assert.equal(await loginOk(chain, 'alice', 'wrong'), false);
  assert.equal(checker.calls.length, 3);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(await loginOk(chain, 'alice', 'wonderland'), true);
  assert.equal(checker.calls.length, 4);
});

test('in the identify chain: identical concurrent checks share one bcrypt run', async (t) => {
  const { store, checker } = await setup(t, `alice:${H.alice}\n`);
  const chain = chainOf(store);
  const results = await Promise.all(Array.from({ length: 8 }, () => loginOk(chain, 'alice', 'wonderland')));
  assert.deepEqual(results, Array(8).fill(true));
  assert.equal(checker.calls.length, 1);
});

test('a file change voids what the chain remembered: a removed user or changed password stops working at once', async (t) => {
  const { file, store, checker } = await setup(t, `alice:${H.alice}\nbob:${H.bob}\n`);
  const chain = chainOf(store);
  assert.equal(await loginOk(chain, 'alice', 'wonderland'), true);
  assert.equal(await loginOk(chain, 'bob', 'builder'), true);
  await writeFile(file, `bob:${bcrypt.hashSync('new-password', 4)}\n`);
  await store.reload();
  assert.equal(await loginOk(chain, 'alice', 'wonderland'), false);
  assert.equal(await loginOk(chain, 'bob', 'builder'), false);
  assert.equal(await loginOk(chain, 'bob', 'new-password'), true);
  assert.equal(checker.calls.length, 5);
});

test('a check that straddles a reload is judged against the new table', async (t) => {
  const { file, store, checker } = await setup(t, `alice:${H.alice}\n`);
  let release!: () => void;
  checker.hold = new Promise((r) => (release = r));
  const pending = store.verify('alice', 'wonderland');
  await waitFor(() => checker.calls.length === 1, 'the check to start');
  await writeFile(file, `bob:${H.bob}\n`);
  await store.reload();
  checker.hold = null;
  release();
  assert.equal(await pending, false, 'alice was removed while her password was being checked');
  assert.equal(await store.verify('alice', 'wonderland'), false);
});

test('a malformed file keeps the last good set and logs an error', async (t) => {
  const { file, store, log, changes } = await setup(t, `alice:${H.alice}\n`);
  assert.deepEqual(changes, [1]);

  for (const bad of ['alice:$apr1$abcdefgh$0123456789012345678901\nbob:plaintext\n', Buffer.from([0x00, 0xff, 0x13, 0x37, 0x0a])]) {
    await writeFile(file, bad);
    await store.reload();
    assert.equal(store.userCount(), 1);
    assert.equal(await store.verify('alice', 'wonderland'), true);
    const error = log.lines.at(-1)!;
    assert.equal(error.level, 50);
    assert.match(error.msg, /keeping the 1 user\(s\) loaded before/);
  }
  assert.deepEqual(changes, [1]);

  await writeFile(file, `carol:${H.carol}\n`);
  await store.reload();
  assert.deepEqual(changes, [1, 1]);
  assert.equal(await store.verify('carol', 'singer'), true);
  assert.equal(await store.verify('alice', 'wonderland'), false);
});

test('an unreadable file keeps the last good set', async (t) => {
  const { file, store, log } = await setup(t, `alice:${H.alice}\n`);
  // A directory in its place: unreadable even for root, unlike a chmod 000 file.
  await unlink(file);
  await mkdir(file);
  await store.reload();
  assert.equal(await store.verify('alice', 'wonderland'), true);
  assert.match(log.lines.at(-1)!.msg, /cannot be read \(EISDIR\); keeping the 1 user/);
});

test('a file removed after start keeps the last good set', async (t) => {
  const { file, store, log } = await setup(t, `alice:${H.alice}\n`);
  await unlink(file);
  await store.reload();
  assert.equal(await store.verify('alice', 'wonderland'), true);
  assert.match(log.lines.at(-1)!.msg, /removed; keeping the 1 user/);
});

test('an emptied file is a deliberate "no users" and is applied', async (t) => {
  const { file, store } = await setup(t, `alice:${H.alice}\n`);
  await writeFile(file, '# everyone removed\n');
  await store.reload();
  assert.equal(store.userCount(), 0);
  assert.equal(await store.verify('alice', 'wonderland'), false);
});

test('skipped lines are logged with line number and user, never with the hash', async (t) => {
  const md5 = '$apr1$abcdefgh$0123456789012345678901';
  const { store, log } = await setup(t, `# users\nalice:${H.alice}\nold:${md5}\nplain:hunter2\n`);
  assert.equal(store.userCount(), 1);
  const skipped = log.lines.filter((l) => l.level === 40 && /skipped/.test(l.msg));
  assert.deepEqual(
    skipped.map((l) => [l.line, l.user]),
    [
      [3, 'old'],
      [4, 'plain'],
    ],
  );
  for (const line of log.raw) {
    assert.doesNotMatch(line, /apr1\$abcdefgh|hunter2/);
    assert.ok(!line.includes(H.alice));
  }
});

test('a file replaced by rename is picked up by the watcher', async (t) => {
  const { file, store, changes } = await setup(t, `alice:${H.alice}\n`);
  await replaceByRename(file, `alice:${H.alice}\nbob:${H.bob}\n`);
  await waitFor(() => changes.length === 2, 'the rename to be noticed');
  assert.equal(store.userCount(), 2);
  assert.equal(await store.verify('bob', 'builder'), true);
  // and again: the watch follows the directory, not the replaced inode
  await replaceByRename(file, `bob:${H.bob}\n`);
  await waitFor(() => changes.length === 3, 'the second rename to be noticed');
  assert.equal(await store.verify('alice', 'wonderland'), false);
});

test('an in-place edit is picked up by the watcher', async (t) => {
  const { file, store, changes } = await setup(t, `alice:${H.alice}\n`);
  await writeFile(file, `alice:${H.alice}\ncarol:${H.carol}\n`);
  await waitFor(() => changes.length === 2, 'the edit to be noticed');
  assert.equal(await store.verify('carol', 'singer'), true);
});

test('without fs.watch, polling of mtime/size/inode picks up a replaced file', async (t) => {
  const { file, store, changes } = await setup(t, `alice:${H.alice}\n`, { watch: false, pollIntervalMs: 30 });
  await replaceByRename(file, `bob:${H.bob}\n`);
  await waitFor(() => changes.length === 2, 'polling to notice the change');
  assert.equal(store.userCount(), 1);
  assert.equal(await store.verify('bob', 'builder'), true);
});

test('a missing file at start: no users, a warning that says how to add one, and a later file is picked up', async (t) => {
  const { file, store, log, changes } = await setup(t, null);
  assert.equal(store.userCount(), 0);
  assert.equal(await store.verify('alice', 'wonderland'), false);
  const warning = log.lines.find((l) => l.level === 40)!;
  assert.ok(warning.msg.includes(`registry-gate passwd add USER --file ${file}`), warning.msg);
  assert.deepEqual(changes, []);

  await replaceByRename(file, `alice:${H.alice}\n`);
  await waitFor(() => changes.length === 1, 'the new file to be noticed');
  assert.equal(await store.verify('alice', 'wonderland'), true);
});

test('a missing directory at start is polled until the file appears', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'rg-users-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'auth', 'htpasswd');
  const changes: number[] = [];
  const store = await UserStore.open(file, {
    logger: captureLogger().logger,
    pool: countingChecker(),
    debounceMs: 10,
    pollIntervalMs: 30,
    onChange: (c) => changes.push(c.users),
  });
  t.after(() => store.close());
  await mkdir(path.dirname(file));
  await writeFile(file, `alice:${H.alice}\n`);
  await waitFor(() => changes.length === 1, 'the file in the new directory to be noticed');
  assert.equal(await store.verify('alice', 'wonderland'), true);
});

test('close() stops watching', async (t) => {
  const { file, store, changes } = await setup(t, `alice:${H.alice}\n`, { pollIntervalMs: 20 });
  await store.close();
  await replaceByRename(file, `bob:${H.bob}\n`);
  await new Promise((r) => setTimeout(r, 150));
  assert.deepEqual(changes, [1]);
});

test('a file that is bad from the start: no users, an error that says so, and the fix is picked up', async (t) => {
  const { file, store, log, changes } = await setup(t, 'alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n');
  assert.equal(store.userCount(), 0);
  const error = log.lines.find((l) => l.level === 50)!;
  assert.match(error.msg, /no line in the file is a usable bcrypt entry; nobody can log in until it is fixed/);
  await replaceByRename(file, `alice:${H.alice}\n`);
  await waitFor(() => changes.length === 1, 'the fixed file to be noticed');
  assert.equal(await store.verify('alice', 'wonderland'), true);
});
