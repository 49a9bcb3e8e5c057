/**
 * Start-up that tells the truth: a registry that does not answer when the proxy starts is named
 * in a warning (instead of clients finding out through 502s), and its coming back is logged.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { freePort } from '../harness/ports.js';
import { disposeProxyConfig, proxyConfig, startProxy } from '../harness/proxy.js';

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
