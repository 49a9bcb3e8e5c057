import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { AcmeChallengeType } from '../../src/config/types.js';
import {
  acmeConfig,
  captureLogs,
  freePort,
  keepAliveClient,
  probeTls,
  serveTlsRuntime,
  startPebble,
  waitFor,
  type Pebble,
  type ServedRuntime,
} from '../harness/pebble.js';

/**
 * Issuance, restart and renewal against a real pebble, once per challenge type. One pebble for
 * the file: its validation ports are fixed, and the suites run one after the other. Pebble issues
 * 30-second certificates, so renewal (at two thirds) happens about 20 s after issuance.
 */
let pebble: Pebble;
let tlsPort: number;
let httpPort: number;

before(async () => {
  [tlsPort, httpPort] = await Promise.all([freePort(), freePort()]);
  pebble = await startPebble({ tlsPort, httpPort, validitySeconds: 30 });
});

after(async () => {
  await pebble?.stop();
});

for (const challenge of ['http-01', 'tls-alpn-01'] as AcmeChallengeType[]) {
  describe(`ACME ${challenge} against pebble`, () => {
    let storageDir: string;
    let served: ServedRuntime | null = null;
    const logs = captureLogs();
    let firstSerial = '';
    let renewedSerial = '';
    let ordersBefore = 0;

    // The HTTP-01 listener only exists for HTTP-01, so the TLS-ALPN-01 suite cannot pass by the other route.
    const serve = (): Promise<ServedRuntime> =>
      serveTlsRuntime(acmeConfig(pebble, storageDir, [challenge]), logs.logger, {
        tlsPort,
        ...(challenge === 'http-01' ? { httpPort } : {}),
      });
    const answered = (): number =>
      logs.entries().filter((e) => e.msg === (challenge === 'http-01' ? 'acme: HTTP-01 request' : 'acme: answered a TLS-ALPN-01 validation')).length;

    before(() => {
      storageDir = mkdtempSync(path.join(tmpdir(), `acme-${challenge}-`));
      ordersBefore = pebble.orderCount();
    });

    after(async () => {
      await served?.close();
      rmSync(storageDir, { recursive: true, force: true });
    });

    it('obtains a certificate with empty storage and serves it to clients trusting only pebble', async (t) => {
      served = await serve();
      const root = await pebble.rootPem();
      await waitFor(async () => (await probeTls(tlsPort, 'registry.test', root)).status === 200, 'the ACME certificate', pebble.log);
      const probe = await probeTls(tlsPort, 'registry.test', root);
      assert.deepEqual([probe.status, probe.body], [200, 'ok']);
      assert.ok(pebble.issuedSerials().includes(probe.serial), 'pebble issued the served certificate');
      assert.equal(pebble.orderCount(), ordersBefore + 1);
      // Pebble validates from several perspectives; all of them reached the responder.
      assert.ok(answered() >= 3, `${answered()} validation requests answered`);
      assert.deepEqual(served.runtime.readiness(), { ready: true });
      assert.equal(statSync(storageDir).mode & 0o777, 0o700);
      assert.equal(statSync(path.join(storageDir, 'account-key.pem')).mode & 0o777, 0o600);
      assert.equal(statSync(path.join(storageDir, 'certificate-key.pem')).mode & 0o777, 0o600);
      const issued = logs.entries().find((e) => e.msg === 'acme: certificate issued and in use for new connections');
      t.diagnostic(`issued in ${String(issued?.ms)} ms`);
      firstSerial = probe.serial;
    });

    it('serves the stored certificate after a restart without ordering again', async () => {
      await served!.close();
      served = await serve();
      const probe = await probeTls(tlsPort, 'registry.test', await pebble.rootPem());
      assert.equal(probe.serial, firstSerial);
      assert.equal(pebble.orderCount(), ordersBefore + 1);
    });

    it('renews before expiry while clients keep connecting, without dropping an open connection', async () => {
      const root = await pebble.rootPem();
      const open = await keepAliveClient(tlsPort, 'registry.test', root);
      assert.equal(open.serial, firstSerial);
      const seen: string[] = [];
      const deadline = Date.now() + 40_000;
      while (Date.now() < deadline) {
        // Every probe is a new connection and must verify: an expired or missing certificate fails it.
        const probe = await probeTls(tlsPort, 'registry.test', root);
        assert.equal(probe.status, 200);
        seen.push(probe.serial);
        // Busy enough to stay under the server's 5 s keep-alive timeout.
        assert.deepEqual(await open.request(), { status: 200, serial: firstSerial, reused: true });
        if (probe.serial !== firstSerial) break;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
      open.close();
      const renewed = seen.at(-1)!;
      assert.notEqual(renewed, firstSerial, 'the certificate was renewed');
      assert.ok(pebble.issuedSerials().includes(renewed));
      renewedSerial = renewed;
      assert.equal(pebble.orderCount(), ordersBefore + 2);
      assert.ok(seen.length > 10, `clients kept connecting during the wait (${seen.length} probes)`);
    });

    it('orders a certificate for an added domain, serving the stored one until it arrives', async () => {
      await served!.close();
      const root = await pebble.rootPem();
      served = await serveTlsRuntime(acmeConfig(pebble, storageDir, [challenge], ['registry.test', 'mirror.test']), logs.logger, {
        tlsPort,
        ...(challenge === 'http-01' ? { httpPort } : {}),
      });
      assert.equal((await probeTls(tlsPort, 'registry.test', root)).serial, renewedSerial, 'the stored certificate is served at once');
      await waitFor(async () => (await probeTls(tlsPort, 'mirror.test', root)).status === 200, 'a certificate covering mirror.test', pebble.log);
      assert.equal(pebble.orderCount(), ordersBefore + 3);
    });
  });
}
