import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Http01Responder } from '../../src/tls/acme/challenges.js';
import { AcmeStorage } from '../../src/tls/acme/storage.js';
import { createSelfSigned } from '../../src/tls/self-signed.js';
import { captureLogs } from '../harness/pebble.js';

describe('AcmeStorage', () => {
  let root: string;
  let dir: string;
  const directory = 'https://ca.example/dir';

  before(async () => {
    root = mkdtempSync(path.join(tmpdir(), 'acme-storage-'));
    dir = path.join(root, 'nested', 'acme');
    await new AcmeStorage(dir).init();
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('creates the directory for the owner only', () => {
    assert.equal(statSync(dir).mode & 0o777, 0o700);
  });

  it('creates the account key once, readable by the owner only', async () => {
    const storage = new AcmeStorage(dir);
    const first = await storage.account(directory);
    assert.match(first.keyPem, /BEGIN PRIVATE KEY/);
    assert.equal(first.url, null);
    assert.equal(statSync(path.join(dir, 'account-key.pem')).mode & 0o777, 0o600);
    assert.equal((await storage.account(directory)).keyPem, first.keyPem);
  });

  it('remembers the account URL per directory and can forget it', async () => {
    const storage = new AcmeStorage(dir);
    await storage.saveAccountUrl(directory, 'https://ca.example/acct/1');
    assert.equal((await storage.account(directory)).url, 'https://ca.example/acct/1');
    assert.equal((await storage.account('https://other.example/dir')).url, null);
    await storage.saveAccountUrl(directory, null);
    assert.equal((await storage.account(directory)).url, null);
  });

  it('stores the certificate with the directory that issued it', async () => {
    const storage = new AcmeStorage(dir);
    assert.equal(await storage.certificate(), null);
    const pair = await createSelfSigned(['registry.example.com'], 1);
    await storage.saveCertificate({ pair, directoryUrl: directory });
    assert.deepEqual(await storage.certificate(), { pair, directoryUrl: directory });
    assert.equal(statSync(path.join(dir, 'certificate-key.pem')).mode & 0o777, 0o600);
  });
});

describe('Http01Responder', () => {
  const responder = new Http01Responder(captureLogs().logger);
  const server = http.createServer((req, res) => {
    if (!responder.answer(req, res)) res.writeHead(308, { Location: 'https://elsewhere/' }).end();
  });
  let port = 0;

  before(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as net.AddressInfo).port;
    responder.set('tok3n', 'tok3n.thumbprint');
  });
  after(() => server.close());

  const fetch = (method: string, pathname: string): Promise<{ status: number; body: string }> =>
    new Promise((resolve, reject) => {
      http
        .request({ host: '127.0.0.1', port, method, path: pathname, agent: false }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (body += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        })
        .on('error', reject)
        .end();
    });

  it('answers a pending token with its key authorization', async () => {
    assert.deepEqual(await fetch('GET', '/.well-known/acme-challenge/tok3n'), { status: 200, body: 'tok3n.thumbprint' });
    assert.deepEqual(await fetch('HEAD', '/.well-known/acme-challenge/tok3n'), { status: 200, body: '' });
  });

  it('answers 404 for unknown or removed tokens', async () => {
    assert.equal((await fetch('GET', '/.well-known/acme-challenge/other')).status, 404);
    responder.delete('tok3n');
    assert.equal((await fetch('GET', '/.well-known/acme-challenge/tok3n')).status, 404);
  });

  it('leaves every other path to the caller', async () => {
    assert.equal((await fetch('GET', '/v2/')).status, 308);
    assert.equal((await fetch('GET', '/.well-known/other')).status, 308);
  });
});
