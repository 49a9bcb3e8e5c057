import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmod, chown, lstat, mkdtemp, readFile, readlink, rm, stat, symlink, writeFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { runPasswd } from '../../src/cli/passwd.js';
import { NEEDS_APACHE_HTPASSWD } from '../harness/apache.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'rg-passwd-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Runs the command with `input` on stdin; returns exit code and what it printed. */
async function passwd(args: string[], input = '', options: { tty?: boolean; rawModeCalls?: boolean[] } = {}) {
  const stdin = new PassThrough() as PassThrough & { setRawMode?: (raw: boolean) => void };
  if (options.rawModeCalls) stdin.setRawMode = (raw: boolean) => void options.rawModeCalls!.push(raw);
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d) => (out += d));
  stderr.on('data', (d) => (err += d));
  stdin.end(input);
  const code = await runPasswd(args, { stdin, stdout, stderr, isTTY: options.tty ?? false });
  return { code, out, err };
}

/** Apache's own verifier: exit 0 when the password matches. */
function apacheVerifies(file: string, user: string, password: string): boolean {
  return spawnSync('htpasswd', ['-vb', file, user, password], { stdio: 'pipe' }).status === 0;
}

test('add → verify → delete round trip; Apache htpasswd -vb accepts our file', NEEDS_APACHE_HTPASSWD, async (t) => {
  const file = path.join(await tempDir(t), 'auth', 'htpasswd');
  const added = await passwd(['add', 'alice', '--file', file, '--password-stdin', '--cost', '5'], 'wonderland\n');
  assert.equal(added.code, 0, added.err);
  assert.match(added.err, /Added user alice/);

  const text = await readFile(file, 'utf8');
  assert.match(text, /^alice:\$2y\$05\$[./A-Za-z0-9]{53}\n$/);
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  assert.equal((await stat(path.dirname(file))).mode & 0o777, 0o700);
  assert.equal(apacheVerifies(file, 'alice', 'wonderland'), true);
  assert.equal(apacheVerifies(file, 'alice', 'wrong'), false);

  assert.equal((await passwd(['verify', 'alice', '--file', file, '--password-stdin'], 'wonderland\n')).code, 0);
  const wrong = await passwd(['verify', 'alice', '--file', file, '--password-stdin'], 'wrong\n');
  assert.equal(wrong.code, 1);
  assert.match(wrong.err, /verification failed/);

  const deleted = await passwd(['delete', 'alice', '--file', file]);
  assert.equal(deleted.code, 0, deleted.err);
  assert.equal(await readFile(file, 'utf8'), '');
  const again = await passwd(['delete', 'alice', '--file', file]);
  assert.equal(again.code, 1);
  assert.match(again.err, /user alice not found/);
  assert.deepEqual(await readdir(path.dirname(file)), ['htpasswd'], 'no temp files left behind');
});

test('default cost is 10 and the hash is $2y$', async (t) => {
  const file = path.join(await tempDir(t), 'htpasswd');
  assert.equal((await passwd(['add', 'bob', '--file', file, '--password-stdin'], 'pw')).code, 0);
  assert.match(await readFile(file, 'utf8'), /^bob:\$2y\$10\$/);
});

test('entries written by Apache htpasswd are verified by us; replacing keeps other lines and the mode', NEEDS_APACHE_HTPASSWD, async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'htpasswd');
  execFileSync('htpasswd', ['-cbB', '-C', '5', file, 'carol', 'singer']);
  const md5Line = execFileSync('htpasswd', ['-nbm', 'legacy', 'old'], { encoding: 'utf8' }).trim();
  const carolLine = (await readFile(file, 'utf8')).trim();
  await writeFile(file, `# managed by hand\n${carolLine}\n${md5Line}\ndave:$2y$05$${'x'.repeat(53)}\n`);
  await chmod(file, 0o640);

  assert.equal((await passwd(['verify', 'carol', '--file', file, '--password-stdin'], 'singer\n')).code, 0);

  const replaced = await passwd(['add', 'dave', '--file', file, '--password-stdin', '--cost', '5'], 'diver\r\n');
  assert.equal(replaced.code, 0, replaced.err);
  assert.match(replaced.err, /Updated password for user dave/);
  assert.match(replaced.err, /ignores line\(s\) 3/, 'warns about the MD5 line the proxy skips');

  const lines = (await readFile(file, 'utf8')).split('\n');
  assert.equal(lines[0], '# managed by hand');
  assert.equal(lines[1], carolLine);
  assert.equal(lines[2], md5Line);
  assert.match(lines[3]!, /^dave:\$2y\$05\$/);
  assert.equal((await stat(file)).mode & 0o777, 0o640);
  assert.equal(apacheVerifies(file, 'dave', 'diver'), true, 'CRLF from stdin was stripped');
  assert.equal(apacheVerifies(file, 'carol', 'singer'), true);
  assert.equal(apacheVerifies(file, 'legacy', 'old'), true);

  const md5 = await passwd(['verify', 'legacy', '--file', file, '--password-stdin'], 'old\n');
  assert.equal(md5.code, 1);
  assert.match(md5.err, /not bcrypt/);
});

test('a symlinked file: the target is replaced, the link kept', async (t) => {
  const dir = await tempDir(t);
  const target = path.join(dir, 'real-htpasswd');
  const link = path.join(dir, 'htpasswd');
  await writeFile(target, '');
  await symlink(target, link);
  assert.equal((await passwd(['add', 'erin', '--file', link, '--password-stdin', '--cost', '4'], 'pw\n')).code, 0);
  assert.ok((await lstat(link)).isSymbolicLink());
  assert.equal(await readlink(link), target);
  assert.match(await readFile(target, 'utf8'), /^erin:\$2y\$04\$/);
});

test('passwords are never taken from argv', async () => {
  for (const args of [['add', 'alice', '--password', 'x'], ['add', 'alice', '--password=x'], ['verify', 'alice', '-p', 'x']]) {
    const result = await passwd(args);
    assert.equal(result.code, 2, args.join(' '));
    assert.match(result.err, /never taken from the command line/);
  }
});

test('usage errors exit 2 with a message; --help exits 0', async () => {
  const cases: [string[], RegExp][] = [
    [[], /missing command/],
    [['rename', 'a'], /unknown command "rename"/],
    [['add'], /missing USER/],
    [['add', 'a', 'b'], /unexpected argument "b"/],
    [['add', 'a:b', '--password-stdin'], /contains ":"/],
    [['add', 'a', '--cost', '3', '--password-stdin'], /--cost must be/],
    [['add', 'a', '--cost', '18', '--password-stdin'], /--cost must be/],
    [['add', 'a', '--cost', 'ten', '--password-stdin'], /--cost must be/],
    [['add', 'a', '--file'], /--file needs a value/],
    [['add', 'a', '--bogus'], /unknown option --bogus/],
    [['add', 'a'], /no terminal.*--password-stdin/],
  ];
  for (const [args, message] of cases) {
    const result = await passwd(args);
    assert.equal(result.code, 2, args.join(' '));
    assert.match(result.err, message, args.join(' '));
  }
  const help = await passwd(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.out, /Usage: registry-gate passwd add\|delete\|verify USER/);
});

test('missing file: verify and delete fail with 1', async (t) => {
  const file = path.join(await tempDir(t), 'nope');
  assert.equal((await passwd(['verify', 'a', '--file', file, '--password-stdin'], 'x\n')).code, 1);
  assert.equal((await passwd(['delete', 'a', '--file', file])).code, 1);
  const unknown = path.join(path.dirname(file), 'htpasswd');
  await writeFile(unknown, '');
  const result = await passwd(['verify', 'ghost', '--file', unknown, '--password-stdin'], 'x\n');
  assert.equal(result.code, 1);
  assert.match(result.err, /user ghost not found/);
});

test('an empty password is refused and nothing is written', async (t) => {
  const file = path.join(await tempDir(t), 'htpasswd');
  const result = await passwd(['add', 'a', '--file', file, '--password-stdin'], '\n');
  assert.equal(result.code, 1);
  assert.match(result.err, /empty password/);
  await assert.rejects(stat(file));
});

test('interactive add: echo off, asked twice, typed in one burst', NEEDS_APACHE_HTPASSWD, async (t) => {
  const file = path.join(await tempDir(t), 'htpasswd');
  const rawModeCalls: boolean[] = [];
  const result = await passwd(['add', 'fred', '--file', file, '--cost', '4'], 's3creX\u007ft\rs3cret\r', { tty: true, rawModeCalls });
  assert.equal(result.code, 0, result.err);
  assert.match(result.err, /New password: \nRe-type new password: \n/);
  assert.ok(!result.err.includes('s3cret'), 'the password is not echoed');
  assert.deepEqual(rawModeCalls, [true, false, true, false]);
  assert.equal(apacheVerifies(file, 'fred', 's3cret'), true, 'backspace was applied');
});

test('interactive add: a mismatch or Ctrl-C changes nothing', async (t) => {
  const file = path.join(await tempDir(t), 'htpasswd');
  await writeFile(file, '');
  const mismatch = await passwd(['add', 'fred', '--file', file], 'one\rtwo\r', { tty: true, rawModeCalls: [] });
  assert.equal(mismatch.code, 1);
  assert.match(mismatch.err, /do not match/);
  const interrupted = await passwd(['add', 'fred', '--file', file], 'one\u0003', { tty: true, rawModeCalls: [] });
  assert.equal(interrupted.code, 130);
  assert.equal(await readFile(file, 'utf8'), '');
});

test('interactive verify asks once', NEEDS_APACHE_HTPASSWD, async (t) => {
  const file = path.join(await tempDir(t), 'htpasswd');
  execFileSync('htpasswd', ['-cbB', '-C', '4', file, 'gina', 'pw']);
  const result = await passwd(['verify', 'gina', '--file', file], 'pw\r', { tty: true, rawModeCalls: [] });
  assert.equal(result.code, 0, result.err);
  assert.match(result.err, /^Password: \n/);
});

test('as a process: the password piped on stdin, the process exits by itself', NEEDS_APACHE_HTPASSWD, async (t) => {
  const file = path.join(await tempDir(t), 'htpasswd');
  const script = `import { runPasswd } from ${JSON.stringify(path.join(root, 'src/cli/passwd.ts'))};
    process.exitCode = await runPasswd(process.argv.slice(1), { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, isTTY: Boolean(process.stdin.isTTY) });`;
  const run = (args: string[], input: string) =>
    new Promise<number | null>((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, ...args], { cwd: root });
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      child.on('exit', (code) => {
        clearTimeout(timer);
        resolve(code);
      });
      // the first line only; the rest of stdin stays unread and must not keep the process waiting
      child.stdin.write(input);
    });
  assert.equal(await run(['add', 'hank', '--file', file, '--password-stdin', '--cost', '4'], 'pw\nignored'), 0);
  assert.equal(apacheVerifies(file, 'hank', 'pw'), true);
  assert.equal(await run(['passwd', 'verify', 'hank', '--file', file, '--password-stdin'], 'nope\n'), 1);
});

const AS_ROOT = { skip: process.getuid?.() !== 0 ? 'needs root (chown to another owner)' : false };

test('rewriting keeps the owner, group and mode of the file, also when root rewrites another owner\'s file', AS_ROOT, async (t) => {
  const file = path.join(await tempDir(t), 'htpasswd');
  await writeFile(file, '');
  await chown(file, 12345, 23456);
  await chmod(file, 0o640);
  const added = await passwd(['add', 'ivy', '--file', file, '--password-stdin', '--cost', '4'], 'pw\n');
  assert.equal(added.code, 0, added.err);
  const after = await stat(file);
  assert.deepEqual([after.uid, after.gid, after.mode & 0o7777], [12345, 23456, 0o640]);
  assert.match(await readFile(file, 'utf8'), /^ivy:\$2y\$04\$/);
});

test("the systemd recipe (docs/deployment.md), followed literally, leaves the file readable by the service user", AS_ROOT, async (t) => {
  const readme = await readFile(path.join(root, 'docs', 'deployment.md'), 'utf8');
  const recipe = (pattern: RegExp) => {
    const line = readme.split('\n').find((l) => pattern.test(l));
    assert.ok(line, `docs/deployment.md has no line matching ${pattern}`);
    return line.replace(/\s+#.*$/, '');
  };
  const useradd = recipe(/^sudo useradd .* registry-gate$/);
  const install = recipe(/^sudo install -o root -g registry-gate -m 0640 \/dev\/null \/etc\/registry-gate\/htpasswd/);
  const add = recipe(/^sudo registry-gate passwd add alice --file \/etc\/registry-gate\/htpasswd/);
  if (spawnSync('id', ['registry-gate']).status !== 0) {
    execFileSync('bash', ['-c', useradd.replace(/^sudo /, '')]);
    t.after(() => void spawnSync('userdel', ['registry-gate']));
  }
  const dir = await tempDir(t);
  await chmod(dir, 0o755);
  // Only the paths change: the config directory is a temporary one, and the prompt is fed from stdin.
  const script = [
    'set -euo pipefail',
    'sudo() { "$@"; }',
    `registry-gate() { ${JSON.stringify(process.execPath)} --import tsx ${JSON.stringify(path.join(root, 'src/cli/main.ts'))} "$@"; }`,
    install,
    `${add} --password-stdin --cost 4 <<< 'alice-pw'`,
  ].join('\n').replaceAll('/etc/registry-gate', dir);
  execFileSync('bash', ['-c', script], { cwd: root, stdio: 'pipe', timeout: 30_000 });
  const read = spawnSync('runuser', ['-u', 'registry-gate', '--', 'cat', path.join(dir, 'htpasswd')], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(read.status, 0, read.stderr);
  assert.match(read.stdout, /^alice:\$2y\$04\$/);
  const after = await stat(path.join(dir, 'htpasswd'));
  assert.equal(after.mode & 0o777, 0o640);
  assert.equal(after.uid, 0);
});
