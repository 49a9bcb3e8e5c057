/**
 * A registry web UI on another origin, as a browser runs it (Debian's chromium, headless, driven
 * by puppeteer-core): with Basic credentials it lists the catalog and reads a tag's digest through
 * the proxy; without them it sees the 401 (not a network error); from an origin not in
 * cors.allowedOrigins the browser blocks it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import puppeteer, { type Browser } from 'puppeteer-core';
import { freePort } from '../harness/ports.js';
import { MANIFEST_V2, pushSmallImage } from '../harness/small-image.js';
import { startPlainStack, type PlainStack } from '../harness/stack.js';

const ALICE = { user: 'alice', pass: 'wonderland' };
const CHROMIUM = '/usr/bin/chromium';

type PageResult = { status: number; body: string; digest: string | null } | { error: string };

/** An empty page on 127.0.0.1:<port>: the UI's origin. */
async function pageServer(): Promise<{ origin: string; close(): void }> {
  const port = await freePort();
  const server = http.createServer((_req, res) => res.end('<!doctype html><title>registry UI</title>'));
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return { origin: `http://127.0.0.1:${port}`, close: () => server.close() };
}

describe('a registry UI in a real browser, through the proxy', () => {
  let ui: { origin: string; close(): void };
  let stranger: { origin: string; close(): void };
  let stack: PlainStack;
  let browser: Browser;
  let digest: string;

  before(async () => {
    [ui, stranger] = await Promise.all([pageServer(), pageServer()]);
    stack = await startPlainStack({ users: { [ALICE.user]: ALICE.pass }, config: { cors: { allowedOrigins: [ui.origin] } } });
    ({ digest } = await pushSmallImage(stack.proxy.url, 'ui/app', 'v1', { auth: ALICE }));
    browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'], timeout: 30_000 });
  });

  after(async () => {
    await browser?.close();
    await stack?.stop();
    ui?.close();
    stranger?.close();
  });

  /** Runs fetch(url) in a page of `origin`, the way a UI does, and reports what the page could read. */
  async function fetchFrom(origin: string, url: string, authorization: string | null, accept?: string): Promise<PageResult> {
    const page = await browser.newPage();
    try {
      await page.goto(origin, { timeout: 15_000 });
      return await page.evaluate(
        async (target: string, auth: string | null, acceptHeader: string | null) => {
          const headers: Record<string, string> = {};
          if (auth) headers.Authorization = auth;
          if (acceptHeader) headers.Accept = acceptHeader;
          try {
            const res = await fetch(target, { headers, credentials: 'include' });
            return { status: res.status, body: await res.text(), digest: res.headers.get('docker-content-digest') };
          } catch (err) {
            return { error: String(err) };
          }
        },
        url,
        authorization,
        accept ?? null,
      );
    } finally {
      await page.close();
    }
  }

  const basic = `Basic ${Buffer.from(`${ALICE.user}:${ALICE.pass}`).toString('base64')}`;

  test('with credentials the page lists the catalog and reads a tag\'s digest', async () => {
    const catalog = await fetchFrom(ui.origin, `${stack.proxy.url}/v2/_catalog`, basic);
    assert.ok(!('error' in catalog), JSON.stringify(catalog));
    assert.equal(catalog.status, 200);
    assert.deepEqual(JSON.parse(catalog.body), { repositories: ['ui/app'] });
    const manifest = await fetchFrom(ui.origin, `${stack.proxy.url}/v2/ui/app/manifests/v1`, basic, MANIFEST_V2);
    assert.ok(!('error' in manifest), JSON.stringify(manifest));
    assert.equal(manifest.status, 200);
    assert.equal(manifest.digest, digest, 'Docker-Content-Digest is exposed to the page');
  });

  test('without credentials the page sees the 401 and its registry error', async () => {
    const refused = await fetchFrom(ui.origin, `${stack.proxy.url}/v2/_catalog`, null);
    assert.ok(!('error' in refused), `the browser hid the answer: ${JSON.stringify(refused)}`);
    assert.equal(refused.status, 401);
    assert.equal(JSON.parse(refused.body).errors[0].code, 'UNAUTHORIZED');
  });

  test('a page on an origin not in cors.allowedOrigins is blocked by the browser', async () => {
    const blocked = await fetchFrom(stranger.origin, `${stack.proxy.url}/v2/_catalog`, basic);
    assert.ok('error' in blocked, `the page read an answer: ${JSON.stringify(blocked)}`);
    assert.match(blocked.error, /TypeError: Failed to fetch/);
  });
});
