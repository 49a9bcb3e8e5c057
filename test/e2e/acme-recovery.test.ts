import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import { Metrics } from '../../src/observe/metrics.js';
import {
  acmeConfig,
  captureLogs,
  createPebble,
  freePort,
  probeTls,
  serveTlsRuntime,
  waitFor,
  type Pebble,
  type ServedRuntime,
} from '../harness/pebble.js';

/** The presented certificate, fetched without verifying it. */
function presented(port: number): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'registry.test', rejectUnauthorized: false }, () => {
      resolve(socket.getPeerX509Certificate()!);
      socket.destroy();
    });
    socket.on('error', reject);
  });
}

/** Failure paths against a real pebble: CA down at start, CA that forgot the account, a challenge type that fails. */
describe('ACME recovering from failures', () => {
  let pebble: Pebble;
  let storageDir: string;
  let tlsPort: number;
  let httpPort: number;
  let served: ServedRuntime | null = null;
  const logs = captureLogs();

  before(async () => {
    [tlsPort, httpPort] = await Promise.all([freePort(), freePort()]);
    pebble = await createPebble({ tlsPort, httpPort });
    storageDir = mkdtempSync(path.join(tmpdir(), 'acme-unreachable-'));
  });

  after(async () => {
    await served?.close();
    await pebble?.stop();
    rmSync(storageDir, { recursive: true, force: true });
  });

  it('serves a temporary self-signed certificate at once and logs why there is no real one', async () => {
    served = await serveTlsRuntime(acmeConfig(pebble, storageDir, ['tls-alpn-01']), logs.logger, { tlsPort });
    const cert = await presented(tlsPort);
    assert.equal(cert.subject, cert.issuer, 'self-signed');
    assert.match(cert.subjectAltName ?? '', /DNS:registry\.test/);
    const probe = await probeTls(tlsPort, 'registry.test', null);
    assert.equal(probe.status, 200, 'TLS is never refused while waiting for the CA');
    await waitFor(async () => logs.entries().some((e) => e.msg === 'acme: ordering a certificate failed'), 'the failure log');
    const failure = logs.entries().find((e) => e.msg === 'acme: ordering a certificate failed')!;
    assert.match(String(failure.err), /ECONNREFUSED/);
    assert.equal(failure.serving, 'temporary self-signed certificate');
    const readiness = served.runtime.readiness();
    assert.equal(readiness.ready, false);
    assert.match(readiness.reason ?? '', /temporary self-signed.*ECONNREFUSED/);
  });

  it('picks up the real certificate once the CA is up, without a restart', async () => {
    await pebble.start();
    const root = await pebble.rootPem();
    await waitFor(async () => (await probeTls(tlsPort, 'registry.test', root)).status === 200, 'the ACME certificate', pebble.log, 20_000);
    assert.equal(pebble.orderCount(), 1);
    assert.deepEqual(served!.runtime.readiness(), { ready: true });
    // What an operator graphs: the failed attempts while the CA was down, then the one issued.
    const text = await new Metrics(served!.runtime).text();
    assert.match(text, /^registry_gate_acme_orders_total\{result="issued"\} 1$/m);
    const failed = Number(/^registry_gate_acme_orders_total\{result="failed"\} (\d+)$/m.exec(text)?.[1]);
    assert.ok(failed >= 1, text);
  });

  it('registers again when the CA has forgotten the stored account', async () => {
    await served!.close();
    // Pebble keeps accounts in memory only; an added domain makes the next start order at once.
    await pebble.restart();
    served = await serveTlsRuntime(acmeConfig(pebble, storageDir, ['tls-alpn-01'], ['registry.test', 'mirror.test']), logs.logger, { tlsPort });
    const root = await pebble.rootPem();
    await waitFor(async () => (await probeTls(tlsPort, 'mirror.test', root)).status === 200, 'a certificate from the restarted CA', pebble.log);
    const messages = logs.entries().map((e) => `${String(e.msg)} ${String(e.err ?? '')}`);
    const unknown = messages.findIndex((m) => /ordering a certificate failed .*Account .* not found/.test(m));
    assert.ok(unknown >= 0, 'the stale account was reported');
    assert.ok(messages.slice(unknown).some((m) => m.startsWith('acme: account registered')), 'and replaced');
  });

  it('falls back to the next challenge type when the first one fails validation', async () => {
    await served!.close();
    const fallbackDir = mkdtempSync(path.join(tmpdir(), 'acme-fallback-'));
    // The main listener is not on the port pebble validates TLS-ALPN-01 on, so only HTTP-01 can succeed.
    const elsewhere = await freePort();
    served = await serveTlsRuntime(acmeConfig(pebble, fallbackDir, ['tls-alpn-01', 'http-01']), logs.logger, { tlsPort: elsewhere, httpPort });
    try {
      const root = await pebble.rootPem();
      await waitFor(async () => (await probeTls(elsewhere, 'registry.test', root)).status === 200, 'the certificate via HTTP-01', pebble.log);
      const fallback = logs.entries().find((e) => e.msg === 'acme: challenge failed, trying the next challenge type');
      assert.equal(fallback?.challenge, 'tls-alpn-01');
      assert.equal(fallback?.next, 'http-01');
      assert.ok(!logs.entries().some((e) => e.msg === 'acme: ordering a certificate failed' && String(e.err).includes('tls-alpn')));
    } finally {
      rmSync(fallbackDir, { recursive: true, force: true });
    }
  });
});
