/**
 * The bench's two decisions: which peer is "the best peer" of a figure, and the configs it
 * starts (bench/peers/) with every placeholder filled; the proxy's must be a config the proxy
 * itself accepts, or the bench would measure an error page.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { best } from '../../bench/lib/report.js';
import { fillTemplate } from '../../bench/lib/peers.js';
import { loadConfig } from '../../src/config/load.js';

const figures: Record<string, number> = { nginx: 188, 'nginx-tuned': 280, haproxy: NaN, caddy: 284 };
const names = Object.keys(figures);

for (const [title, better, values, expected] of [
  ['the highest rate', 'higher', figures, { name: 'caddy', value: 284 }],
  ['the lowest latency', 'lower', figures, { name: 'nginx', value: 188 }],
  ['a tie goes to the first named', 'higher', { nginx: 5, 'nginx-tuned': 5, haproxy: 1, caddy: 1 }, { name: 'nginx', value: 5 }],
  ['no figure at all', 'higher', { nginx: NaN, 'nginx-tuned': Infinity, haproxy: NaN, caddy: NaN }, { name: '-', value: NaN }],
] as const) {
  test(`best peer: ${title}`, () => {
    assert.deepEqual(
      best(names, (n) => (values as Record<string, number>)[n]!, better),
      expected,
    );
  });
}

const values = {
  dir: '/tmp/x',
  port: 1,
  metricsPort: 2,
  upstream: '127.0.0.1:5000',
  certFile: '/tmp/c.pem',
  keyFile: '/tmp/k.pem',
  certKeyFile: '/tmp/ck.pem',
  htpasswdFile: '/tmp/htpasswd',
  user: 'bench',
  passwordHash: '$2y$05$abc',
  passwordHashBase64: 'JDJ5JDA1JGFiYw==',
  cacheTtlSeconds: 2,
};

test('every config in bench/peers/ fills without a placeholder left', () => {
  const files = readdirSync(path.resolve(import.meta.dirname, '..', '..', 'bench', 'peers'));
  assert.ok(files.length >= 5, `bench/peers has ${files.length} files`);
  for (const file of files) assert.doesNotMatch(fillTemplate(file, values), /\{\{\w+\}\}/, file);
});

test('a placeholder without a value is an error naming it', () => {
  const { passwordHash: _, ...without } = values;
  assert.throws(() => fillTemplate('haproxy.cfg', without), /haproxy\.cfg: no value for \{\{passwordHash\}\}/);
});

test("the bench's proxy config is one the proxy loads, with rules, metrics, audit and login limits on", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rg-bench-config-'));
  const file = path.join(dir, 'proxy.config.json');
  writeFileSync(file, fillTemplate('registry-gate.config.json', { ...values, dir, upstream: 'http://127.0.0.1:5000' }));
  const { config } = loadConfig(file, {});
  assert.equal(config.auth.mode, 'read-public');
  assert.equal(config.access?.length, 4);
  assert.equal(config.metrics.listen, '127.0.0.1:2');
  assert.equal(config.audit.file, path.join(dir, 'audit.jsonl'));
  assert.equal(config.loginLimits.enabled, true);
});
