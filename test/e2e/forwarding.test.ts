import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import { startEchoUpstream, type EchoUpstream } from '../harness/echo-upstream.js';
import { disposeProxyConfig, proxyConfig, startProxy, type RunningProxy } from '../harness/proxy.js';
import { freePort } from '../harness/ports.js';
import { request } from '../harness/registry-client.js';

/** What the fake registry says it received, from its JSON echo. */
interface Echo {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  bodyBytes: number;
  bodySha256: string | null;
}

function echoOf(body: Buffer): Echo {
  return JSON.parse(body.toString('utf8')) as Echo;
}

function apiVersionOf(res: { headers: http.IncomingHttpHeaders }): unknown {
  return res.headers['docker-distribution-api-version'];
}

describe('forwarding to the registry', () => {
  let upstream: EchoUpstream;
  let proxy: RunningProxy;
  let trusting: RunningProxy;
  let hurried: RunningProxy;

  before(async () => {
    upstream = await startEchoUpstream();
    proxy = await startProxy(await proxyConfig({ upstream: upstream.url }));
    trusting = await startProxy(await proxyConfig({ upstream: upstream.url, trustedProxies: ['127.0.0.0/8'] }));
    hurried = await startProxy(await proxyConfig({ upstream: upstream.url, upstreamTimeoutSeconds: 1 }));
  });

  after(async () => {
    for (const p of [proxy, trusting, hurried]) await p?.stop();
    await upstream?.stop();
  });

  test('Host is kept; X-Forwarded-* are set by the proxy and client-sent ones are dropped', async () => {
    const res = await request(`${proxy.url}/v2/library/app/manifests/latest`, {
      headers: {
        host: 'registry.example.com:5443',
        'x-forwarded-host': 'evil.example.net',
        'x-forwarded-proto': 'https',
        'x-forwarded-for': '6.6.6.6',
        forwarded: 'for=6.6.6.6;host=evil.example.net;proto=https',
        'x-real-ip': '6.6.6.6',
      },
    });
    assert.equal(res.status, 200);
    const seen = echoOf(res.body).headers;
    assert.equal(seen.host, 'registry.example.com:5443');
    assert.equal(seen['x-forwarded-host'], 'registry.example.com:5443');
    assert.equal(seen['x-forwarded-proto'], 'http');
    assert.equal(seen['x-forwarded-for'], '127.0.0.1');
    assert.equal(seen.forwarded, undefined);
    assert.equal(seen['x-real-ip'], undefined);
  });

  test('a peer in trustedProxies may tell the client-facing scheme, host and address', async () => {
    const res = await request(`${trusting.url}/v2/`, {
      headers: { host: 'internal:5000', 'x-forwarded-host': 'registry.example.com', 'x-forwarded-proto': 'https', 'x-forwarded-for': '203.0.113.7' },
    });
    const seen = echoOf(res.body).headers;
    assert.equal(seen['x-forwarded-host'], 'registry.example.com');
    assert.equal(seen['x-forwarded-proto'], 'https');
    assert.equal(seen['x-forwarded-for'], '203.0.113.7, 127.0.0.1');
  });

  test('a malformed Host is refused before anything is forwarded', async () => {
    const before = upstream.requests.length;
    const res = await request(`${proxy.url}/v2/`, { headers: { host: 'evil.example.net/path?x' } });
    assert.equal(res.status, 400);
    assert.equal(upstream.requests.length, before);
  });

  test('Authorization never reaches the registry, also with Expect: 100-continue', async () => {
    const body = Buffer.alloc(256 * 1024, 7);
    const res = await new Promise<http.IncomingMessage & { text?: string }>((resolve, reject) => {
      const req = http.request(`${proxy.url}/v2/app/blobs/uploads/abc?digest=x`, {
        method: 'PUT',
        headers: { authorization: 'Basic YWxpY2U6c2VjcmV0', 'proxy-authorization': 'Basic eDp5', expect: '100-continue', 'content-length': body.length },
      });
      req.on('continue', () => req.end(body));
      req.on('response', resolve);
      req.on('error', reject);
    });
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(c as Buffer);
    const seen = echoOf(Buffer.concat(chunks));
    assert.equal(res.statusCode, 200);
    assert.equal(seen.headers.authorization, undefined);
    assert.equal(seen.headers['proxy-authorization'], undefined);
    assert.equal(seen.bodyBytes, body.length);
  });

  test('Docker-Distribution-Api-Version is added when the registry does not send it, and the registry value wins', async () => {
    upstream.enqueue({ status: 200, body: '{}' }, { status: 200, body: '{}', headers: { 'docker-distribution-api-version': 'registry/2.1' } });
    assert.equal(apiVersionOf(await request(`${proxy.url}/v2/`)), 'registry/2.0');
    assert.equal(apiVersionOf(await request(`${proxy.url}/v2/`)), 'registry/2.1');
  });

  test('old docker clients and bare Go clients get 404; current clients pass', async () => {
    const blocked = ['docker/1.5.0 go/go1.4.1', 'docker/1.3.2', 'Go 1.1 package http'];
    const passing = ['docker/1.5.0-dev', 'docker/1.6.0', 'Go-http-client/1.1', 'skopeo/1.9.3'];
    for (const ua of blocked) {
      const res = await request(`${proxy.url}/v2/`, { headers: { 'user-agent': ua } });
      assert.equal(res.status, 404, ua);
      assert.equal(apiVersionOf(res), 'registry/2.0');
      assert.equal(JSON.parse(res.body.toString()).errors[0].code, 'NOT_FOUND');
    }
    for (const ua of passing) assert.equal((await request(`${proxy.url}/v2/`, { headers: { 'user-agent': ua } })).status, 200, ua);
  });

  test('Range, 206, ETag and Docker-Content-Digest pass untouched; bodies are not compressed', async () => {
    const part = Buffer.from('0123456789abcdef'.repeat(64));
    const digest = 'sha256:' + 'a'.repeat(64);
    upstream.enqueue({
      status: 206,
      body: part,
      headers: { 'content-range': 'bytes 100-1123/5000', etag: `"${digest}"`, 'docker-content-digest': digest, 'content-type': 'application/octet-stream' },
    });
    const res = await request(`${proxy.url}/v2/app/blobs/${digest}`, { headers: { range: 'bytes=100-1123', 'accept-encoding': 'gzip, br' } });
    assert.equal(res.status, 206);
    assert.equal(res.headers['content-range'], 'bytes 100-1123/5000');
    assert.equal(res.headers.etag, `"${digest}"`);
    assert.equal(res.headers['docker-content-digest'], digest);
    assert.equal(res.headers['content-encoding'], undefined);
    assert.deepEqual(res.body, part);
    const seen = upstream.requests.at(-1)!;
    assert.equal(seen.headers.range, 'bytes=100-1123');
  });

  test('connections to the registry are kept alive and reused, for blob downloads too', async () => {
    for (const path of ['/v2/', `/v2/app/blobs/sha256:${'e'.repeat(64)}`]) {
      const before = upstream.totalSockets();
      for (let i = 0; i < 5; i++) assert.equal((await request(`${proxy.url}${path}`)).status, 200);
      assert.ok(upstream.totalSockets() - before <= 1, `${path}: opened ${upstream.totalSockets() - before} upstream connections for 5 sequential requests`);
    }
  });

  test('a blob answer in a framing the fast path does not take (chunked) still arrives whole', async () => {
    const path = `/v2/app/blobs/sha256:${'f'.repeat(64)}`;
    const body = Buffer.alloc(300 * 1024, 5);
    upstream.setHandler((r) => (r.url === path ? { chunked: true, body, headers: { 'docker-content-digest': 'sha256:x' } } : undefined));
    try {
      const res = await request(`${proxy.url}${path}`);
      assert.equal(res.status, 200);
      assert.equal(res.headers['docker-content-digest'], 'sha256:x');
      assert.deepEqual(res.body, body);
    } finally {
      upstream.setHandler(null);
    }
  });

  test('a registry that refuses connections gives 502 with a registry error, within a second, naming no internal address', async () => {
    const deadPort = await freePort();
    const deadConfig = await proxyConfig({ upstream: `http://127.0.0.1:${deadPort}` });
    const dead = await startProxy(deadConfig);
    try {
      for (const path of ['/v2/app/tags/list', `/v2/app/blobs/sha256:${'1'.repeat(64)}`]) {
        const started = Date.now();
        const res = await request(`${dead.url}${path}`);
        assert.ok(Date.now() - started < 1000, path);
        assert.equal(res.status, 502, path);
        assert.equal(apiVersionOf(res), 'registry/2.0');
        assert.equal(JSON.parse(res.body.toString()).errors[0].code, 'UNAVAILABLE');
        assert.doesNotMatch(res.body.toString(), new RegExp(`${deadPort}|127\\.0\\.0\\.1|ECONNREFUSED`), 'the body names the registry\'s address or the cause');
      }
      const log = await dead.waitForLog((l) => l.msg === 'upstream request failed');
      assert.match(JSON.stringify(log), new RegExp(`127\\.0\\.0\\.1:${deadPort}.*ECONNREFUSED|ECONNREFUSED.*127\\.0\\.0\\.1:${deadPort}`), 'the operator\'s log has both');
    } finally {
      await dead.stop();
      await disposeProxyConfig(deadConfig);
    }
  });

  test('a registry that stays silent gives 504 after upstreamTimeoutSeconds', async () => {
    for (const path of ['/v2/app/manifests/slow', `/v2/app/blobs/sha256:${'2'.repeat(64)}`]) {
      upstream.enqueue({ neverAnswer: true });
      const started = Date.now();
      const res = await request(`${hurried.url}${path}`);
      const took = Date.now() - started;
      assert.equal(res.status, 504, path);
      assert.ok(took >= 900 && took < 5000, `${path} took ${took} ms`);
      assert.equal(JSON.parse(res.body.toString()).errors[0].code, 'GATEWAY_TIMEOUT');
      assert.equal(apiVersionOf(res), 'registry/2.0');
    }
  });

  test('a registry dying mid-body closes the client connection instead of leaving it hanging', async () => {
    upstream.enqueue({ status: 200, body: Buffer.alloc(1024 * 1024, 1), destroyAfterBytes: 64 * 1024 });
    const outcome = await new Promise<string>((resolve) => {
      const req = http.get(`${proxy.url}/v2/app/blobs/sha256:${'b'.repeat(64)}`, (res) => {
        res.on('data', () => {});
        res.on('end', () => resolve(res.complete ? 'complete' : 'ended-incomplete'));
        res.on('error', () => resolve('closed'));
        res.on('aborted', () => resolve('closed'));
      });
      req.on('error', () => resolve('closed'));
      setTimeout(() => resolve('hanging'), 5000).unref();
    });
    assert.ok(outcome === 'closed' || outcome === 'ended-incomplete', outcome);
  });

  test('a client that goes away mid-upload aborts the upstream request', async () => {
    const req = http.request(`${proxy.url}/v2/app/blobs/uploads/u1`, { method: 'PATCH', headers: { 'content-type': 'application/octet-stream' } });
    req.on('error', () => {});
    req.write(Buffer.alloc(512 * 1024, 2));
    const seen = await upstream.waitForRequest((r) => r.url === '/v2/app/blobs/uploads/u1');
    req.destroy();
    await Promise.race([seen.closed, new Promise((_, reject) => setTimeout(() => reject(new Error('upstream request still open')), 3000))]);
    assert.equal(seen.bodyComplete, false);
  });

  test('a client that goes away mid-download closes the upstream response', async () => {
    upstream.enqueue({ status: 200, body: Buffer.alloc(256 * 1024 * 1024, 3) });
    const req = http.get(`${proxy.url}/v2/app/blobs/sha256:${'c'.repeat(64)}`);
    const [res] = (await once(req, 'response')) as [http.IncomingMessage];
    await once(res, 'data');
    const openWhileDownloading = upstream.openSockets();
    req.destroy();
    const deadline = Date.now() + 3000;
    while (upstream.openSockets() >= openWhileDownloading && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.ok(upstream.openSockets() < openWhileDownloading, 'the upstream connection of the abandoned download is still open');
  });

  test('the proxy answers its own paths and 404s the rest with registry JSON', async () => {
    assert.equal((await request(`${proxy.url}/healthz`)).status, 200);
    const ready = await request(`${proxy.url}/readyz`);
    assert.equal(ready.status, 200, ready.body.toString());
    const other = await request(`${proxy.url}/admin`);
    assert.equal(other.status, 404);
    assert.equal(JSON.parse(other.body.toString()).errors[0].code, 'NOT_FOUND');
  });

  test('one log line per request, without credentials', async () => {
    await request(`${proxy.url}/v2/logged/manifests/latest?probe=1`, { headers: { authorization: 'Basic c2VjcmV0dXNlcjpodW50ZXIy' } });
    const line = await proxy.waitForLog((l) => l.msg === 'request' && l.path === '/v2/logged/manifests/latest');
    assert.equal(line.method, 'GET');
    assert.equal(line.status, 200);
    assert.equal(line.upstreamStatus, 200);
    assert.equal(typeof line.durationMs, 'number');
    assert.ok((line.bytesOut as number) > 0);
    const all = JSON.stringify(proxy.logs());
    assert.doesNotMatch(all, /c2VjcmV0dXNlcjpodW50ZXIy|hunter2/);
  });
});
