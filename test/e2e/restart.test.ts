/**
 * Stopping without losing pushes: SIGTERM in the middle of eight 256 MiB pushes by skopeo lets
 * all eight commit and then exits, while /readyz says unready and new work is refused with 503;
 * past `drainSeconds` what still runs is cut and named in the log; idle connections no push needs
 * close at once.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { cachedOciImage } from '../harness/image-cache.js';
import { disposeProxyConfig, proxyConfig, startProxy, type ProxyConfigFile, type RunningProxy } from '../harness/proxy.js';
import { get, head, request } from '../harness/registry-client.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { skopeoCopy } from '../harness/skopeo.js';
import { writeHtpasswd } from '../harness/htpasswd.js';
import { makeTempDir, removeTempDir } from '../harness/tmp.js';
import { raceTimeout, waitUntil } from '../harness/process.js';
import { startPlainStack, type PlainStack } from '../harness/stack.js';

const ALICE = { user: 'alice', pass: 'alice-pass' };
const PUSHES = 8;

/** The proxy's exit; a timer keeps this test process alive meanwhile (the harness unrefs the child). */
async function exitOf(proxy: RunningProxy, ms: number) {
  const result = await raceTimeout(proxy.process.exited, ms);
  assert.notEqual(result, 'timeout', `the proxy did not exit within ${ms} ms`);
  return result as Exclude<typeof result, 'timeout'>;
}

/** Bytes of every upload under way in the registry's storage, by repository. */
async function uploadBytes(registry: Registry, prefix: string): Promise<number[]> {
  const root = path.join(registry.dataDir, 'docker/registry/v2/repositories', prefix);
  const sizes: number[] = [];
  for (const repo of await readdir(root).catch(() => [])) {
    const uploads = path.join(root, repo, '_uploads');
    let bytes = 0;
    for (const id of await readdir(uploads).catch(() => [])) bytes += (await stat(path.join(uploads, id, 'data')).catch(() => ({ size: 0 }))).size;
    sizes.push(bytes);
  }
  return sizes;
}

/** A raw keep-alive connection: send one request, get the response head and body as text. */
class RawConnection {
  readonly socket: net.Socket;
  readonly closed: Promise<void>;
  private buffered = '';
  private waiting: (() => void) | null = null;

  constructor(port: number) {
    this.socket = net.connect(port, '127.0.0.1');
    this.socket.on('error', () => {});
    this.closed = new Promise((r) => this.socket.once('close', () => r()));
    this.socket.on('data', (c: Buffer) => {
      this.buffered += c.toString('latin1');
      this.waiting?.();
    });
  }

  /** Writes `text` and resolves with the next complete response (Content-Length framed). */
  async request(text: string, timeoutMs = 10_000): Promise<{ status: number; headers: string; body: string }> {
    this.socket.write(text, 'latin1');
    const until = Date.now() + timeoutMs;
    for (;;) {
      const end = this.buffered.indexOf('\r\n\r\n');
      if (end !== -1) {
        const headers = this.buffered.slice(0, end);
        const length = Number(/^content-length: *(\d+)/im.exec(headers)?.[1] ?? 0);
        if (this.buffered.length >= end + 4 + length) {
          const body = this.buffered.slice(end + 4, end + 4 + length);
          this.buffered = this.buffered.slice(end + 4 + length);
          return { status: Number(headers.slice(9, 12)), headers, body };
        }
      }
      if (this.socket.destroyed || Date.now() > until) throw new Error(`no complete response (have ${JSON.stringify(this.buffered.slice(0, 200))})`);
      await new Promise<void>((r) => {
        this.waiting = r;
        setTimeout(r, 100);
      });
    }
  }
}

describe('graceful stop', () => {
  let registry: Registry;
  let work: string;
  let htpasswdFile: string;
  const configs: ProxyConfigFile[] = [];
  const proxies: RunningProxy[] = [];

  before(async () => {
    work = await makeTempDir('restart');
    htpasswdFile = path.join(work, 'htpasswd');
    [registry] = await Promise.all([startRegistry(), writeHtpasswd(htpasswdFile, { [ALICE.user]: ALICE.pass })]);
  });

  after(async () => {
    for (const p of proxies) await p.stop({ graceMs: 1_000 });
    for (const c of configs) await disposeProxyConfig(c);
    await registry?.stop();
    if (work) await removeTempDir(work);
  });

  const start = async (drainSeconds: number): Promise<RunningProxy> => {
    const config = await proxyConfig({ upstream: registry.url, drainSeconds, auth: { mode: 'private', htpasswdFile } });
    configs.push(config);
    const proxy = await startProxy(config);
    proxies.push(proxy);
    return proxy;
  };

  test(`SIGTERM during ${PUSHES} concurrent 256 MiB pushes: all ${PUSHES} commit with the right digest, then the proxy exits`, async () => {
    const image = await cachedOciImage({ seed: 256, layerBytes: 256 * 1024 * 1024 });
    const proxy = await start(120);
    const pushes = Array.from({ length: PUSHES }, (_, i) =>
      skopeoCopy(image.ociRef, `docker://${proxy.host}/drain/app-${i}:v1`, { tlsVerify: false, destCreds: ALICE, allowFail: true, timeoutMs: 180_000 }),
    );
    await waitUntil(
      async () => {
        const sizes = await uploadBytes(registry, 'drain');
        return sizes.length === PUSHES && sizes.every((b) => b >= 16 * 1024 * 1024);
      },
      { what: `${PUSHES} uploads with 16 MiB each in the registry`, timeoutMs: 120_000 },
    );
    const signalled = Date.now();
    proxy.process.child.kill('SIGTERM');
    await proxy.waitForLog((l) => String(l.msg).startsWith('stopping:'));
    const ready = await get(`${proxy.url}/readyz`);
    assert.equal(ready.status, 503);
    assert.deepEqual(JSON.parse(ready.body.toString()), { status: 'unready', reasons: ['shutting down'] });
    const newWork = await get(`${proxy.url}/v2/drain/other/manifests/v1`, { auth: ALICE });
    assert.equal(newWork.status, 503);
    assert.equal(JSON.parse(newWork.body.toString()).errors[0].code, 'SHUTTING_DOWN');
    assert.equal(newWork.headers.connection, 'close');

    const results = await Promise.all(pushes);
    const pushed = Date.now();
    for (const [i, result] of results.entries()) {
      assert.equal(result.code, 0, `push ${i}: ${result.stderr}`);
      assert.equal(result.digest, image.manifestDigest, `push ${i}`);
      const stored = await head(`${registry.url}/v2/drain/app-${i}/manifests/v1`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
      assert.equal(stored.headers['docker-content-digest'], image.manifestDigest, `the registry holds push ${i}`);
    }
    const exit = await exitOf(proxy, 130_000);
    const drained = Date.now() - signalled;
    assert.equal(exit.code, 0, proxy.process.stderrTail());
    assert.ok(drained < 120_000, `exited ${drained} ms after SIGTERM`);
    // Immediately once every push has put its manifest; a push that ends otherwise counts as done after 5 s of quiet.
    assert.ok(Date.now() - pushed < 8_000, `exited ${Date.now() - pushed} ms after the last push was done`);
    await proxy.waitForLog((l) => l.msg === 'stopped');
    assert.ok(!proxy.logs().some((l) => String(l.msg).includes('cut')), 'nothing was cut');
    const pushLines = proxy.logs().filter((l) => l.msg === 'request' && l.method === 'PUT' && String(l.path).endsWith('/manifests/v1'));
    assert.equal(pushLines.filter((l) => l.status === 201).length, PUSHES, 'every manifest PUT answered 201');
  });

  test('past drainSeconds a running upload is cut and named; idle connections close at once; /readyz says shutting down on a new connection', async () => {
    const proxy = await start(2);
    const auth = `Authorization: Basic ${Buffer.from(`${ALICE.user}:${ALICE.pass}`).toString('base64')}\r\n`;
    const idle = new RawConnection(proxy.port);
    assert.equal((await idle.request(`GET /v2/ HTTP/1.1\r\nHost: h\r\n${auth}\r\n`)).status, 200);

    const pusher = new RawConnection(proxy.port);
    const started = await pusher.request(`POST /v2/cut/app/blobs/uploads/ HTTP/1.1\r\nHost: h\r\n${auth}Content-Length: 0\r\n\r\n`);
    assert.equal(started.status, 202, started.headers);
    const location = new URL(/^location: *(.+)$/im.exec(started.headers)![1]!.trim(), 'http://h');

    const uploader = new RawConnection(proxy.port);
    uploader.socket.write(`PATCH ${location.pathname}${location.search} HTTP/1.1\r\nHost: h\r\n${auth}Transfer-Encoding: chunked\r\n\r\n`);
    const trickle = setInterval(() => uploader.socket.writable && uploader.socket.write('1\r\nx\r\n'), 300);
    try {
      await new Promise((r) => setTimeout(r, 500));
      const signalled = Date.now();
      proxy.process.child.kill('SIGTERM');
      await proxy.waitForLog((l) => String(l.msg).startsWith('stopping:'));
      await idle.closed;
      assert.ok(Date.now() - signalled < 2_000, 'the idle connection was not closed at once');

      const ready = await new RawConnection(proxy.port).request('GET /readyz HTTP/1.1\r\nHost: h\r\n\r\n');
      assert.equal(ready.status, 503);
      assert.deepEqual(JSON.parse(ready.body), { status: 'unready', reasons: ['shutting down'] });

      const exit = await exitOf(proxy, 10_000);
      const took = Date.now() - signalled;
      assert.equal(exit.code, 0);
      assert.ok(took >= 1_900 && took < 5_000, `exited ${took} ms after SIGTERM`);
      const cut = await proxy.waitForLog((l) => String(l.msg).includes('request(s) in flight'));
      assert.match(String(cut.msg), new RegExp(`drainSeconds \\(2\\) are over; cut 1 request\\(s\\) in flight: PATCH ${location.pathname} from 127\\.0\\.0\\.1 \\(alice\\)`));
      const line = await proxy.waitForLog((l) => l.msg === 'request' && l.method === 'PATCH');
      assert.equal(line.failure, 'SHUTDOWN');
    } finally {
      clearInterval(trickle);
    }
  });
});

describe('reload with SIGHUP', () => {
  const BOB = { user: 'bob', pass: 'bob-pass' };
  let stack: PlainStack;
  let registry: Registry;
  let config: ProxyConfigFile;
  let proxy: RunningProxy;

  before(async () => {
    stack = await startPlainStack({
      users: { [ALICE.user]: ALICE.pass, [BOB.user]: BOB.pass },
      config: {
        access: [
          { who: ['user:alice'], repositories: ['team-a/**'], actions: ['pull', 'push'] },
          { who: ['user:bob'], repositories: ['team-a/**'], actions: ['pull'] },
        ],
      },
    });
    ({ registry, config, proxy } = stack);
  });

  after(() => stack?.stop());

  const bobStartsUpload = async () => (await request(`${proxy.url}/v2/team-b/app/blobs/uploads/`, { method: 'POST', auth: BOB })).status;
  const rewrite = (changes: object) => writeFile(proxy.configFile, JSON.stringify({ ...config, ...changes }, null, 2));
  const sighup = async (logLine: (l: Record<string, unknown>) => boolean) => {
    const seen = proxy.logs().length;
    proxy.process.child.kill('SIGHUP');
    return proxy.waitForLog((l) => proxy.logs().indexOf(l) >= seen && logLine(l), 10_000);
  };

  test('a rule added and SIGHUP: it applies at once while a 256 MiB push goes on; a bad config is refused and the rules stay', async () => {
    const image = await cachedOciImage({ seed: 256, layerBytes: 256 * 1024 * 1024 });
    const push = skopeoCopy(image.ociRef, `docker://${proxy.host}/team-a/app:v1`, { tlsVerify: false, destCreds: ALICE, allowFail: true, timeoutMs: 120_000 });
    await waitUntil(async () => (await uploadBytes(registry, 'team-a')).some((b) => b >= 16 * 1024 * 1024), { what: 'the push to be 16 MiB in', timeoutMs: 60_000 });

    assert.equal(await bobStartsUpload(), 403);
    await rewrite({ access: [...config.access!, { who: ['user:bob'], repositories: ['team-b/**'], actions: ['pull', 'push'] }], upstreamTimeoutSeconds: 600 });
    const reloaded = await sighup((l) => String(l.msg).startsWith('configuration reloaded'));
    assert.match(String(reloaded.msg), /configuration reloaded \(access\)/);
    const later = await proxy.waitForLog((l) => String(l.msg).includes('takes effect at the next start'));
    assert.match(String(later.msg), /upstreamTimeoutSeconds changed/);
    assert.equal(await bobStartsUpload(), 202, 'the new rule lets bob push to team-b');

    await rewrite({ access: [{ who: ['user:bob'], repositories: ['**'], actions: ['fly'] }] });
    const refusedReload = await sighup((l) => String(l.msg).startsWith('configuration not reloaded'));
    assert.match(String(refusedReload.msg), /configuration not reloaded, the running one stays: .*access\[0\]\.actions/);
    assert.equal(await bobStartsUpload(), 202, 'the rules in force stay after a bad config');

    const pushed = await push;
    assert.equal(pushed.code, 0, pushed.stderr);
    assert.equal(pushed.digest, image.manifestDigest);
    assert.ok(!proxy.logs().some((l) => l.msg === 'request' && l.status === 0), 'a request was cut');
  });
});
