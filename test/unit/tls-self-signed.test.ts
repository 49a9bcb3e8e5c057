import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { inspectPair } from '../../src/tls/certificate.js';
import { createSelfSigned } from '../../src/tls/self-signed.js';
import { loadOrCreateSelfSigned } from '../../src/tls/self-signed-store.js';
import { captureLogs } from '../harness/pebble.js';

const DAY = 24 * 60 * 60 * 1000;

describe('createSelfSigned', () => {
  const pair = createSelfSigned(['Registry.LAN', '10.0.0.5', '::1'], 365);
  const cert = new X509Certificate(pair.certPem);

  it('is a CA for TLS servers, so clients can use it as their trust anchor', () => {
    assert.equal(cert.ca, true);
    assert.deepEqual(cert.keyUsage, ['1.3.6.1.5.5.7.3.1']);
    assert.ok(cert.checkIssued(cert), 'self-issued');
    assert.ok(cert.verify(cert.publicKey), 'self-signed');
  });

  it('carries DNS names and IP addresses as SANs', () => {
    assert.deepEqual(inspectPair(pair).names, ['registry.lan', '10.0.0.5', '::1']);
    assert.equal(cert.checkIP('10.0.0.5'), '10.0.0.5');
    assert.equal(cert.checkHost('registry.lan'), 'registry.lan');
  });

  it('is valid from a little in the past for about a year', () => {
    const info = inspectPair(pair);
    assert.ok(info.notBefore.getTime() < Date.now() - 30 * 60 * 1000);
    assert.ok(Math.abs(info.notAfter.getTime() - Date.now() - 365 * DAY) < 60_000);
  });

  it('gives every certificate its own subject', () => {
    assert.notEqual(new X509Certificate(createSelfSigned(['a.lan'], 1).certPem).subject, new X509Certificate(createSelfSigned(['a.lan'], 1).certPem).subject);
  });
});

describe('loadOrCreateSelfSigned', () => {
  let stateDir: string;
  const logs = captureLogs();
  const certFile = (): string => path.join(stateDir, 'tls', 'self-signed-cert.pem');
  const keyFile = (): string => path.join(stateDir, 'tls', 'self-signed-key.pem');

  before(() => {
    stateDir = mkdtempSync(path.join(tmpdir(), 'self-signed-store-'));
  });
  after(() => rmSync(stateDir, { recursive: true, force: true }));

  it('creates the pair with a private key file and reuses it next time', async () => {
    const first = await loadOrCreateSelfSigned(stateDir, ['localhost'], logs.logger);
    assert.equal(first.certFile, certFile());
    assert.equal(statSync(keyFile()).mode & 0o777, 0o600);
    assert.equal(statSync(path.dirname(keyFile())).mode & 0o777, 0o700);
    const second = await loadOrCreateSelfSigned(stateDir, ['localhost'], logs.logger);
    assert.equal(second.pair.certPem, first.pair.certPem);
  });

  it('replaces a certificate that expires within 30 days', async () => {
    const expiring = createSelfSigned(['localhost'], 20);
    writeFileSync(certFile(), expiring.certPem);
    writeFileSync(keyFile(), expiring.keyPem);
    const replaced = await loadOrCreateSelfSigned(stateDir, ['localhost'], logs.logger);
    assert.notEqual(replaced.pair.certPem, expiring.certPem);
    assert.equal(readFileSync(certFile(), 'utf8'), replaced.pair.certPem);
    assert.ok(logs.entries().some((e) => String(e.reason).startsWith('expires ')));
  });

  it('replaces a broken pair', async () => {
    writeFileSync(keyFile(), createSelfSigned(['localhost'], 1).keyPem);
    const replaced = await loadOrCreateSelfSigned(stateDir, ['localhost'], logs.logger);
    assert.doesNotThrow(() => inspectPair(replaced.pair));
    assert.ok(logs.entries().some((e) => e.reason === 'the private key does not match the certificate'));
  });

  it('compares names regardless of case, order and IPv6 spelling', async () => {
    const before = await loadOrCreateSelfSigned(stateDir, ['localhost', '0:0:0:0:0:0:0:1'], logs.logger);
    const after = await loadOrCreateSelfSigned(stateDir, ['::1', 'LOCALHOST'], logs.logger);
    assert.equal(after.pair.certPem, before.pair.certPem);
  });
});
