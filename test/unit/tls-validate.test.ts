import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TlsConfig } from '../../src/config/types.js';
import { validateTlsConfig } from '../../src/tls/validate.js';

function tls(overrides: Partial<TlsConfig>, acme: Partial<TlsConfig['acme']> = {}): TlsConfig {
  return {
    mode: 'acme',
    certFile: null,
    keyFile: null,
    names: ['localhost'],
    selfSignedKey: 'ecdsa-p256',
    ...overrides,
    acme: {
      domains: ['registry.example.com'],
      email: 'ops@example.com',
      directoryUrl: 'https://acme-v02.api.letsencrypt.org/directory',
      challenges: ['tls-alpn-01', 'http-01'],
      caFile: null,
      storageDir: '/data/acme',
      renewBeforeDays: 30,
      eab: null,
      ...acme,
    },
  };
}

describe('validateTlsConfig', () => {
  it('accepts sensible configs of every mode', () => {
    assert.deepEqual(validateTlsConfig(tls({})), []);
    assert.deepEqual(validateTlsConfig(tls({ mode: 'off' })), []);
    assert.deepEqual(validateTlsConfig(tls({ mode: 'files', certFile: '/c.pem', keyFile: '/k.pem' })), []);
    assert.deepEqual(validateTlsConfig(tls({ mode: 'self-signed', names: ['localhost', '127.0.0.1', '::1', 'reg.lan'] })), []);
    assert.deepEqual(validateTlsConfig(tls({}, { eab: { kid: 'kid-1', hmacKey: 'zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W' } })), []);
  });

  it('only checks the section of the selected mode', () => {
    assert.deepEqual(validateTlsConfig(tls({ mode: 'self-signed' }, { domains: [] })), []);
    assert.deepEqual(validateTlsConfig(tls({ mode: 'acme', names: [] })), []);
  });

  it('requires both files in mode "files"', () => {
    assert.deepEqual(validateTlsConfig(tls({ mode: 'files', certFile: '/c.pem' })), ['tls.keyFile: required when tls.mode is "files"']);
    assert.deepEqual(validateTlsConfig(tls({ mode: 'files' })), [
      'tls.certFile: required when tls.mode is "files"',
      'tls.keyFile: required when tls.mode is "files"',
    ]);
  });

  it('names the bad self-signed name', () => {
    assert.deepEqual(validateTlsConfig(tls({ mode: 'self-signed', names: ['ok.lan', 'bad name'] })), [
      'tls.names[1]: "bad name" is neither a host name nor an IP address',
    ]);
    assert.match(validateTlsConfig(tls({ mode: 'self-signed', names: [] }))[0]!, /^tls\.names: /);
  });

  it('rejects wildcard, IP, unqualified and duplicate ACME domains by index', () => {
    const problems = validateTlsConfig(
      tls({}, { domains: ['registry.example.com', '*.example.com', '10.0.0.1', 'localhost', 'Registry.example.com'] }),
    );
    assert.equal(problems.length, 4);
    assert.match(problems[0]!, /^tls\.acme\.domains\[1\]: "\*\.example\.com" is a wildcard; wildcards need the DNS-01 challenge/);
    assert.match(problems[1]!, /^tls\.acme\.domains\[2\]: .*IP address/);
    assert.match(problems[2]!, /^tls\.acme\.domains\[3\]: .*not a fully qualified DNS name/);
    assert.match(problems[3]!, /^tls\.acme\.domains\[4\]: .*listed twice/);
  });

  it('checks the rest of the ACME section', () => {
    assert.match(validateTlsConfig(tls({}, { domains: [] }))[0]!, /^tls\.acme\.domains: list at least one domain/);
    assert.match(validateTlsConfig(tls({}, { directoryUrl: 'http://ca.lan/dir' }))[0]!, /^tls\.acme\.directoryUrl: must be an https:\/\/ URL/);
    assert.match(validateTlsConfig(tls({}, { directoryUrl: 'letsencrypt-prod' }))[0]!, /^tls\.acme\.directoryUrl: "letsencrypt-prod" is not a URL/);
    assert.match(validateTlsConfig(tls({}, { email: 'ops' }))[0]!, /^tls\.acme\.email: /);
    assert.match(validateTlsConfig(tls({}, { challenges: ['http-01', 'http-01'] }))[0]!, /^tls\.acme\.challenges: /);
    assert.deepEqual(validateTlsConfig(tls({}, { eab: { kid: '', hmacKey: 'not base64!' } })), [
      'tls.acme.eab.kid: must not be empty',
      'tls.acme.eab.hmacKey: must be the base64url-encoded key your CA issued',
    ]);
  });
});
