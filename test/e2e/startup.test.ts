/**
 * Start-up that tells the truth: a registry that does not answer when the proxy starts is named
 * in a warning (instead of clients finding out through 502s), and its coming back is logged;
 * files the config names are checked first, by `config check` and by `serve`, and what stops the
 * proxy is one line naming the key and the fix; the hint for adding a user runs as printed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { chmod, cp, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { freePort } from '../harness/ports.js';
import { run } from '../harness/process.js';
import { disposeProxyConfig, proxyConfig, repoRoot, runProxyCli, startProxy } from '../harness/proxy.js';
import { makeTempDir, removeTempDir } from '../harness/tmp.js';
import { startRedis } from '../harness/redis.js';

/**
 * The built CLI with its runtime packages, copied under `dir`: a checkout may sit where another
 * user cannot enter (root's home is 0700, so is a `mktemp -d`), and `nobody` must still run it.
 */
async function cliAnyoneCanRun(dir: string): Promise<string> {
  const copy = path.join(dir, 'cli');
  await cp(path.join(repoRoot, 'dist'), path.join(copy, 'dist'), { recursive: true });
  await cp(path.join(repoRoot, 'package.json'), path.join(copy, 'package.json'));
  const listed = await run('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: repoRoot, timeoutMs: 30_000 });
  const modules = path.join(repoRoot, 'node_modules') + path.sep;
  const tops = new Set(
    listed.stdout
      .split('\n')
      .filter((line) => line.startsWith(modules))
      .map((line) => line.slice(modules.length).split(path.sep))
      .map((parts) => (parts[0]!.startsWith('@') ? parts.slice(0, 2) : parts.slice(0, 1)).join(path.sep)),
  );
  for (const top of tops) await cp(path.join(modules, top), path.join(copy, 'node_modules', top), { recursive: true });
  await run('chmod', ['-R', 'a+rX', copy], { check: true });
  return path.join(copy, 'dist', 'cli', 'main.js');
}

async function configIn(dir: string, config: object): Promise<string> {
  const file = path.join(dir, 'proxy.config.json');
  await writeFile(file, JSON.stringify(config));
  return file;
}

/** What an operator sees of a failed start: one line per problem, each naming a key; no stack. */
function assertOneLineEach(stderr: string, keys: string[]): void {
  const lines = stderr.trim().split('\n');
  assert.equal(lines.length, keys.length, stderr);
  lines.forEach((line, i) => assert.match(line, new RegExp(`^registry-gate: ${keys[i]!.replaceAll('.', '\\.')}: `), stderr));
  assert.doesNotMatch(stderr, /^\s+at /m);
}

test('a registry down at start is warned about, and its return is logged', async (t) => {
  const port = await freePort();
  const config = await proxyConfig({ upstream: `http://127.0.0.1:${port}` });
  const proxy = await startProxy(config);
  t.after(async () => {
    await proxy.stop();
    await disposeProxyConfig(config);
  });
  const warning = await proxy.waitForLog((l) => String(l.msg).includes('clients get 502 until it answers'));
  assert.match(String(warning.msg), new RegExp(`registry at 127\\.0\\.0\\.1:${port} unreachable \\(ECONNREFUSED\\)`));

  const registry = http.createServer((_req, res) => res.end('{}'));
  await new Promise<void>((r) => registry.listen(port, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => registry.close(() => r())));
  await proxy.waitForLog((l) => l.msg === 'the registry answers now; requests are forwarded', 10_000);
});

test('a certificate that is not there: config check and serve name the key and the fix, one line each, no stack trace', async (t) => {
  const dir = await makeTempDir('startup-files');
  t.after(() => removeTempDir(dir));
  const file = await configIn(dir, {
    listen: '127.0.0.1:0',
    tls: { mode: 'files', certFile: './tls/chain.pem', keyFile: './tls/key.pem' },
    auth: { mode: 'none' },
  });
  const checked = await runProxyCli(['config', 'check', '--config', file]);
  assert.equal(checked.code, 2);
  assert.match(checked.stdout, /is valid, but the proxy would not start: 2 named file\(s\) are not usable/);
  assert.match(checked.stdout, new RegExp(`# error: tls\\.certFile: ${dir}/tls/chain\\.pem does not exist; point tls\\.certFile at the PEM certificate chain`));
  assert.match(checked.stdout, /# error: tls\.keyFile: .*key\.pem does not exist; point tls\.keyFile at/);

  const served = await runProxyCli(['serve', '--config', file]);
  assert.equal(served.code, 2);
  assertOneLineEach(served.stderr, ['tls.certFile', 'tls.keyFile']);

  // There, but not a certificate: the same, from the parse.
  await mkdir(path.join(dir, 'tls'));
  await writeFile(path.join(dir, 'tls', 'chain.pem'), 'not a certificate\n');
  await writeFile(path.join(dir, 'tls', 'key.pem'), 'not a key\n');
  const garbage = await runProxyCli(['serve', '--config', file]);
  assert.equal(garbage.code, 2);
  assert.equal(garbage.stderr.trim().split('\n').length, 1, garbage.stderr);
  assert.match(garbage.stderr, /^registry-gate: tls\.certFile .*chain\.pem: /);
});

test('files the service user may not read or write are named when checked as that user', async (t) => {
  const dir = await makeTempDir('startup-perms');
  t.after(() => removeTempDir(dir));
  await chmod(dir, 0o755);
  await mkdir(path.join(dir, 'auth'), { mode: 0o755 });
  // Written on the host by root, as in the container case: 0600, so the service user reads nothing.
  await writeFile(path.join(dir, 'auth', 'htpasswd'), 'alice:$2y$10$abcdefghijklmnopqrstuuJ3Ygq4m3uZqkF9hJxQ8iK6ZkB1pJwzu\n', { mode: 0o600 });
  const file = await configIn(dir, { listen: '127.0.0.1:0', tls: { mode: 'off' }, auth: { mode: 'private' }, stateDir: './state' });
  await chmod(file, 0o644);
  const main = await cliAnyoneCanRun(dir);
  const asNobody = (args: string[]) => run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, main, ...args], { cwd: dir, timeoutMs: 30_000 });

  const checked = await asNobody(['config', 'check', '--config', file]);
  assert.equal(checked.code, 2, checked.stderr);
  assert.match(checked.stdout, new RegExp(`# error: auth\\.htpasswdFile: ${dir}/auth/htpasswd is not readable by nobody \\(uid 65534\\), so nobody could log in; let the proxy's user read it \\(chown nobody`));
  assert.match(checked.stdout, new RegExp(`# error: stateDir: ${dir}/state does not exist and cannot be created in ${dir} by nobody`));
  const served = await asNobody(['serve', '--config', file]);
  assert.equal(served.code, 2);
  assertOneLineEach(served.stderr, ['auth.htpasswdFile', 'stateDir']);

  // As root every file reads: the check says so rather than passing in silence.
  const asRoot = await runProxyCli(['config', 'check', '--config', file]);
  assert.equal(asRoot.code, 0, asRoot.stdout);
  assert.match(asRoot.stdout, /# note: checked as root, who may read any file; run it as the service user/);
});

test('the hint for the first user is a command that works, as printed', async (t) => {
  const port = await freePort();
  const registry = http.createServer((_req, res) => res.writeHead(200, { 'docker-distribution-api-version': 'registry/2.0' }).end('{}'));
  await new Promise<void>((r) => registry.listen(port, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => registry.close(() => r())));
  const dir = await makeTempDir('startup-hint');
  t.after(() => removeTempDir(dir));
  const htpasswd = path.join(dir, 'htpasswd');
  const config = await proxyConfig({ upstream: `http://127.0.0.1:${port}`, auth: { mode: 'private', challenge: 'basic', htpasswdFile: htpasswd } });
  const proxy = await startProxy(config);
  t.after(async () => {
    await proxy.stop();
    await disposeProxyConfig(config);
  });
  const hint = await proxy.waitForLog((l) => String(l.msg).includes('add a user with: '));
  const command = /add a user with: (.*)$/.exec(String(hint.msg))![1]!;
  assert.equal(command, `npx registry-gate passwd add USER --file ${htpasswd}`);
  const [program, ...args] = command.replace('USER', 'alice').split(' ');
  const added = await run(program!, [...args, '--password-stdin'], { cwd: repoRoot, stdin: 'hint-works\n', timeoutMs: 60_000 });
  assert.equal(added.code, 0, added.stderr);
  const auth = `Basic ${Buffer.from('alice:hint-works').toString('base64')}`;
  let status = 0;
  for (let i = 0; i < 100 && status !== 200; i++) {
    status = (await fetch(`${proxy.url}/v2/`, { headers: { authorization: auth } })).status;
    if (status !== 200) await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(status, 200, 'the user added by the hinted command logs in');
});

test('Redis that does not answer at start: one line naming the key and the fix', async (t) => {
  const dir = await makeTempDir('startup-redis');
  t.after(() => removeTempDir(dir));
  const file = await configIn(dir, { listen: '127.0.0.1:0', tls: { mode: 'off' }, auth: { mode: 'private' }, redis: `redis://127.0.0.1:${await freePort()}`, redisOptions: { secretKey: 'k'.repeat(32) } });
  const served = await runProxyCli(['serve', '--config', file]);
  assert.equal(served.code, 1);
  assertOneLineEach(served.stderr, ['redis']);
  assert.match(served.stderr, /start Redis or correct "redis"/);
});

test('`health` probes the address of the config it is given', async (t) => {
  const port = await freePort();
  const config = await proxyConfig({ upstream: `http://127.0.0.1:${port}` });
  const dir = await makeTempDir('startup-health');
  t.after(async () => {
    await disposeProxyConfig(config);
    await removeTempDir(dir);
  });
  const file = await configIn(dir, config);
  const down = await runProxyCli(['health', '--config', file]);
  assert.equal(down.code, 1);
  assert.match(down.stdout, new RegExp(`http://127\\.0\\.0\\.1:${config.listen.split(':')[1]}/healthz failed \\(ECONNREFUSED\\)`));
  const proxy = await startProxy(config);
  t.after(() => proxy.stop());
  const up = await runProxyCli(['health', '--config', file]);
  assert.equal(up.code, 0, up.stdout);
  assert.match(up.stdout, /answered 200/);
});

test('a listen address in use ends the process at once with one line, also with Redis connections open', async (t) => {
  const dir = await makeTempDir('startup-listen');
  const redis = await startRedis();
  const taken = http.createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    taken.close();
    await redis.stop();
    await removeTempDir(dir);
  });
  const port = (taken.address() as { port: number }).port;
  const file = await configIn(dir, { listen: `127.0.0.1:${port}`, tls: { mode: 'off' }, auth: { mode: 'private' }, redis: redis.url, redisOptions: { secretKey: 'k'.repeat(32) } });
  const started = Date.now();
  const served = await runProxyCli(['serve', '--config', file], { timeoutMs: 20_000 });
  assert.equal(served.code, 1, served.stderr);
  assert.ok(Date.now() - started < 10_000, `took ${Date.now() - started} ms to exit`);
  assert.match(served.stderr, /^registry-gate: cannot listen: listen EADDRINUSE.*choose another "listen" address/m);
  assert.equal(served.stderr.trim().split('\n').length, 1, served.stderr);
});
