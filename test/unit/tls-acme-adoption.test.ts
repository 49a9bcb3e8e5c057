import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { adoptionStep, type ServedCertificate, type SharedCertificate } from '../../src/tls/acme/adoption.js';

const at = (seconds: number): Date => new Date(Date.UTC(2030, 0, 1) + seconds * 1000);
const acme = (serial: string, notAfter: number): ServedCertificate => ({ origin: 'acme', serial, notAfter: at(notAfter) });
const stored = (serial: string, notAfter: number): SharedCertificate => ({ serial, notAfter: at(notAfter) });

describe('adoptionStep: what a replica does with the fleet’s stored certificate', () => {
  const table: Array<[string, ServedCertificate | null, SharedCertificate | null, string | null, ReturnType<typeof adoptionStep>]> = [
    ['nothing stored (or it does not fit the config): order', acme('a1', 30), null, 'a1', 'order'],
    ['nothing served yet, one stored: adopt', null, stored('a1', 30), null, 'adopt'],
    ['a temporary certificate served, one stored: adopt', { origin: 'temporary', serial: 't', notAfter: at(9_999) }, stored('a1', 30), null, 'adopt'],
    ['the stored one outlives the one served (renewed by another replica): adopt', acme('a1', 30), stored('a2', 60), 'a1', 'adopt'],
    ['an announcement brought the stored one while the order waited for the lock: current', acme('a2', 60), stored('a2', 60), null, 'current'],
    ['renewed by another replica and adopted while this renewal waited for the lock: current', acme('a2', 60), stored('a2', 60), 'a1', 'current'],
    ['the served certificate is the one whose renewal is due: order, however its renewal time is drawn', acme('a1', 30), stored('a1', 30), 'a1', 'order'],
    ['the one served outlives what is stored (an older copy): order', acme('a2', 60), stored('a1', 30), 'a2', 'order'],
    ['an announcement of the certificate already served: nothing to adopt', acme('a1', 30), stored('a1', 30), null, 'current'],
  ];
  for (const [name, served, shared, replacing, expected] of table) {
    it(name, () => assert.equal(adoptionStep(served, shared, replacing), expected));
  }
});
