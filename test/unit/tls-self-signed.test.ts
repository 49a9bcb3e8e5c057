import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { inspectPair } from '../../src/tls/certificate.js';
import { createSelfSigned } from '../../src/tls/self-signed.js';
import { loadOrCreateSelfSigned } from '../../src/tls/self-signed-store.js';
import { captureLogs } from '../harness/pebble.js';

const DAY = 24 * 60 * 60 * 1000;

describe('createSelfSigned', async () => {
  const pair = await createSelfSigned(['Registry.LAN', '10.0.0.5', '::1'], 365);
  const cert = new X509Certificate(pair.certPem);

  it('has an ECDSA P-256 key by default and RSA-2048 on request', async () => {
    const key = createPrivateKey(pair.keyPem);
    assert.equal(key.asymmetricKeyType, 'ec');
    assert.equal(key.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    assert.equal(cert.publicKey.asymmetricKeyType, 'ec');
    const rsa = await createSelfSigned(['registry.lan'], 365, 'rsa-2048');
    const rsaCert = new X509Certificate(rsa.certPem);
    assert.equal(rsaCert.publicKey.asymmetricKeyType, 'rsa');
    assert.equal(rsaCert.publicKey.asymmetricKeyDetails?.modulusLength, 2048);
    assert.ok(rsaCert.verify(rsaCert.publicKey), 'self-signed');
    assert.doesNotThrow(() => inspectPair(rsa));
  });

  it('is a key OpenSSL serves with, in PEM files that can be concatenated into a bundle', () => {
    assert.doesNotThrow(() => inspectPair(pair));
    assert.match(pair.certPem, /^-----BEGIN CERTIFICATE-----\n[\s\S]+\n-----END CERTIFICATE-----\n$/);
    assert.match(pair.keyPem, /^-----BEGIN PRIVATE KEY-----\n[\s\S]+\n-----END PRIVATE KEY-----\n$/);
  });

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

  it('gives every certificate its own subject', async () => {
    const subject = async (): Promise<string> => new X509Certificate((await createSelfSigned(['a.lan'], 1)).certPem).subject;
    assert.notEqual(await subject(), await subject());
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
    const first = await loadOrCreateSelfSigned(stateDir, ['localhost'], 'ecdsa-p256', logs.logger);
    assert.equal(first.certFile, certFile());
    assert.equal(statSync(keyFile()).mode & 0o777, 0o600);
    assert.equal(statSync(path.dirname(keyFile())).mode & 0o777, 0o700);
    const second = await loadOrCreateSelfSigned(stateDir, ['localhost'], 'ecdsa-p256', logs.logger);
    assert.equal(second.pair.certPem, first.pair.certPem);
  });

  it('replaces a certificate that expires within 30 days', async () => {
    const expiring = await createSelfSigned(['localhost'], 20);
    writeFileSync(certFile(), expiring.certPem);
    writeFileSync(keyFile(), expiring.keyPem);
    const replaced = await loadOrCreateSelfSigned(stateDir, ['localhost'], 'ecdsa-p256', logs.logger);
    assert.notEqual(replaced.pair.certPem, expiring.certPem);
    assert.equal(readFileSync(certFile(), 'utf8'), replaced.pair.certPem);
    assert.ok(logs.entries().some((e) => String(e.reason).startsWith('expires ')));
  });

  it('replaces a broken pair', async () => {
    writeFileSync(keyFile(), (await createSelfSigned(['localhost'], 1)).keyPem);
    const replaced = await loadOrCreateSelfSigned(stateDir, ['localhost'], 'ecdsa-p256', logs.logger);
    assert.doesNotThrow(() => inspectPair(replaced.pair));
    assert.ok(logs.entries().some((e) => e.reason === 'the private key does not match the certificate'));
  });

  it('compares names regardless of case, order and IPv6 spelling', async () => {
    const before = await loadOrCreateSelfSigned(stateDir, ['localhost', '0:0:0:0:0:0:0:1'], 'ecdsa-p256', logs.logger);
    const after = await loadOrCreateSelfSigned(stateDir, ['::1', 'LOCALHOST'], 'ecdsa-p256', logs.logger);
    assert.equal(after.pair.certPem, before.pair.certPem);
  });

  it('keeps a stored certificate of the other key type, which clients trust, and says how to replace it', async () => {
    const rsa = await createSelfSigned(['localhost'], 365, 'rsa-2048');
    writeFileSync(certFile(), rsa.certPem);
    writeFileSync(keyFile(), rsa.keyPem);
    const kept = await loadOrCreateSelfSigned(stateDir, ['localhost'], 'ecdsa-p256', logs.logger);
    assert.equal(kept.pair.certPem, rsa.certPem);
    const line = logs.entries().find((e) => e.key === 'rsa-2048' && e.selfSignedKey === 'ecdsa-p256');
    assert.match(String(line?.msg), /keeps its rsa-2048 key although tls\.selfSignedKey is ecdsa-p256; delete .*self-signed-cert\.pem and its key to make a new one/);
    rmSync(certFile());
    const fresh = await loadOrCreateSelfSigned(stateDir, ['localhost'], 'ecdsa-p256', logs.logger);
    assert.equal(new X509Certificate(fresh.pair.certPem).publicKey.asymmetricKeyType, 'ec');
  });
});
