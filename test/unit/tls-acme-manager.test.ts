/**
 * The ACME manager of a replica in a fleet, with the fleet's lock and store in memory and a CA
 * that is not there: what is asserted is whether the replica sets out to order at all.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { freePort, captureLogs } from '../harness/pebble.js';
import { defaultConfig } from '../../src/config/defaults.js';
import type { AcmeFleet } from '../../src/tls/acme/fleet.js';
import { AcmeManager } from '../../src/tls/acme/manager.js';
import type { StoredCertificate } from '../../src/tls/acme/storage.js';
import { createSelfSigned } from '../../src/tls/self-signed.js';
import { CertificateSlot } from '../../src/tls/slot.js';

const DAY_MS = 24 * 60 * 60 * 1000;

describe('AcmeManager in a fleet', () => {
  // The manager's alarms are unref'ed; something has to hold the loop open here.
  let keepAlive: NodeJS.Timeout;
  before(() => (keepAlive = setInterval(() => undefined, 1_000)));
  after(() => clearInterval(keepAlive));

  it('renews a stored certificate whose renewal is due, however a later draw of the renewal time falls', async (t) => {
    const directoryUrl = `https://127.0.0.1:${await freePort()}/dir`;
    // Issued 61 days ago for 90: renewal falls between day 60 and day 63, at random. The draw made
    // at start puts it at day 60 (due); any later draw would put it near day 63 (not yet due).
    const pair = await createSelfSigned(['due.test'], 90, 'ecdsa-p256', new Date(Date.now() - 61 * DAY_MS));
    let draws = 0;
    t.mock.method(Math, 'random', () => (draws++ === 0 ? 0 : 0.999));
    let stored: StoredCertificate | null = { pair, directoryUrl };
    let locks = 0;
    const fleet = {
      store: {
        init: async () => undefined,
        account: async () => ({ keyPem: '', url: null }),
        saveAccountUrl: async () => undefined,
        certificate: async () => stored,
        saveCertificate: async (next: StoredCertificate) => void (stored = next),
      },
      listen: async () => undefined,
      close: () => undefined,
      announce: async () => undefined,
      tryLock: async () => {
        locks++;
        return { release: async () => undefined };
      },
    } as unknown as AcmeFleet;
    const logs = captureLogs();
    const manager = new AcmeManager({
      acme: { ...defaultConfig().tls.acme, domains: ['due.test'], directoryUrl, storageDir: '/nonexistent' },
      caPem: null,
      slot: new CertificateSlot(),
      responders: { alpnKeyPem: '' },
      retry: { minMs: 60_000, maxMs: 60_000 },
      logger: logs.logger,
      fleet,
    });
    await manager.start();
    try {
      const deadline = Date.now() + 5_000;
      while (Date.now() < deadline && !logs.entries().some((l) => l.msg === 'acme: ordering a certificate failed')) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const messages = logs.entries().map((l) => String(l.msg));
      assert.ok(messages.includes('acme: ordering a certificate failed'), `the replica set out to order (the CA is away):\n${messages.join('\n')}`);
      assert.equal(locks, 1, 'one attempt, then the retry delay');
      assert.ok(draws >= 1, 'the renewal time was drawn');
    } finally {
      manager.close();
    }
  });
});
