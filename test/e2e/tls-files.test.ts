import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import type https from 'node:https';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { defaultConfig } from '../../src/config/defaults.js';
import type { Config } from '../../src/config/types.js';
import { inspectCertificate, type CertificatePair } from '../../src/tls/certificate.js';
import { createTlsRuntime, type TlsTuning } from '../../src/tls/runtime.js';
import { createSelfSigned } from '../../src/tls/self-signed.js';
import { captureLogs, keepAliveClient, probeTls, waitFor } from '../harness/pebble.js';

const pairs = { a: await createSelfSigned(['files.test'], 30), b: await createSelfSigned(['files.test'], 30), c: await createSelfSigned(['files.test'], 30) };
const trustAll = Object.values(pairs).map((p) => p.certPem).join('');
const serial = (pair: CertificatePair): string => inspectCertificate(pair.certPem).serial.replace(/^0+/, '');

/** certbot's layout: live/{cert,key}.pem are symlinks into archive/, swapped by rename on renewal. */
class CertbotDir {
  private version = 0;
  readonly live: string;

  constructor(readonly root: string) {
    this.live = path.join(root, 'live');
    mkdirSync(this.live, { recursive: true });
    mkdirSync(path.join(root, 'archive'));
  }

  get certFile(): string {
    return path.join(this.live, 'cert.pem');
  }

  get keyFile(): string {
    return path.join(this.live, 'key.pem');
  }

  install(certPem: string, keyPem: string): void {
    this.version++;
    for (const [name, content] of [['cert', certPem], ['key', keyPem]] as const) {
      const target = path.join(this.root, 'archive', `${name}${this.version}.pem`);
      writeFileSync(target, content);
      const tmp = path.join(this.live, `.${name}.tmp`);
      symlinkSync(path.relative(this.live, target), tmp);
      renameSync(tmp, path.join(this.live, `${name}.pem`));
    }
  }
}

function filesConfig(dir: CertbotDir): Config {
  const config = defaultConfig();
  return { ...config, tls: { ...config.tls, mode: 'files', certFile: dir.certFile, keyFile: dir.keyFile } };
}

async function serve(dir: CertbotDir, tuning: Partial<TlsTuning>, logs = captureLogs()) {
  const runtime = await createTlsRuntime(filesConfig(dir), { logger: logs.logger, tuning });
  await runtime.start();
  const server = runtime.createMainServer((_req, res) => res.end('ok'), () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    runtime,
    port: (server.address() as net.AddressInfo).port,
    async close() {
      await runtime.close();
      server.close();
      (server as https.Server).closeAllConnections();
    },
  };
}

describe('files mode', () => {
  let root: string;
  before(() => {
    root = mkdtempSync(path.join(tmpdir(), 'tls-files-'));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  describe('watching certbot-style symlink swaps', () => {
    const logs = captureLogs();
    let dir: CertbotDir;
    let served: Awaited<ReturnType<typeof serve>>;

    before(async () => {
      dir = new CertbotDir(path.join(root, 'watched'));
      dir.install(pairs.a.certPem, pairs.a.keyPem);
      // Polling effectively off: these changes must be seen through fs.watch.
      served = await serve(dir, { filesPollMs: 600_000, filesDebounceMs: 100 }, logs);
    });
    after(() => served.close());

    it('serves the pair from the files and reports ready', async () => {
      assert.equal((await probeTls(served.port, 'files.test', trustAll)).serial, serial(pairs.a));
      assert.deepEqual(served.runtime.readiness(), { ready: true });
    });

    it('gives new connections the new certificate while an open keep-alive connection keeps working', async () => {
      const open = await keepAliveClient(served.port, 'files.test', trustAll);
      assert.equal(open.serial, serial(pairs.a));
      dir.install(pairs.b.certPem, pairs.b.keyPem);
      await waitFor(async () => (await probeTls(served.port, 'files.test', trustAll)).serial === serial(pairs.b), 'the rotated certificate');
      assert.deepEqual(await open.request(), { status: 200, serial: serial(pairs.a), reused: true });
      open.close();
    });

    it('keeps the current certificate when the new files do not match, and says why', async () => {
      dir.install(pairs.c.certPem, pairs.a.keyPem);
      await waitFor(async () => logs.entries().some((e) => String(e.err).includes('does not match')), 'the mismatch error');
      const error = logs.entries().find((e) => String(e.err).includes('does not match'))!;
      assert.equal(error.level, 50);
      assert.match(String(error.msg), /still serving the previous certificate/);
      assert.equal((await probeTls(served.port, 'files.test', trustAll)).serial, serial(pairs.b));
    });

    it('keeps the current certificate when the new certificate file is garbage', async () => {
      dir.install('not a certificate\n', pairs.c.keyPem);
      await waitFor(async () => logs.entries().some((e) => String(e.err).includes('no PEM certificate found')), 'the parse error');
      assert.match(String(logs.entries().find((e) => String(e.err).includes('no PEM'))!.err), /^tls\.certFile .*live\/cert\.pem: /);
      assert.equal((await probeTls(served.port, 'files.test', trustAll)).serial, serial(pairs.b));
    });

    it('picks up the next good pair after broken ones', async () => {
      dir.install(pairs.c.certPem, pairs.c.keyPem);
      await waitFor(async () => (await probeTls(served.port, 'files.test', trustAll)).serial === serial(pairs.c), 'the repaired certificate');
    });
  });

  it('notices changes by polling when no file system event arrives', async () => {
    const dir = new CertbotDir(path.join(root, 'polled'));
    dir.install(pairs.a.certPem, pairs.a.keyPem);
    // A debounce longer than the test: only the poll can pick the change up.
    const served = await serve(dir, { filesPollMs: 200, filesDebounceMs: 600_000 });
    try {
      dir.install(pairs.b.certPem, pairs.b.keyPem);
      await waitFor(async () => (await probeTls(served.port, 'files.test', trustAll)).serial === serial(pairs.b), 'the polled change');
    } finally {
      await served.close();
    }
  });

  it('refuses to start with a message naming the file at fault', async () => {
    const logs = captureLogs();
    const attempt = async (dir: CertbotDir): Promise<void> => {
      const runtime = await createTlsRuntime(filesConfig(dir), { logger: logs.logger });
      try {
        await runtime.start();
      } finally {
        await runtime.close();
      }
    };
    const missing = new CertbotDir(path.join(root, 'missing'));
    writeFileSync(missing.certFile, pairs.a.certPem);
    await assert.rejects(attempt(missing), /^Error: tls\.keyFile .*missing\/live\/key\.pem: cannot read: ENOENT/);

    const mismatched = new CertbotDir(path.join(root, 'mismatched'));
    mismatched.install(pairs.a.certPem, pairs.b.keyPem);
    await assert.rejects(attempt(mismatched), /tls\.certFile .*cert\.pem \+ tls\.keyFile .*key\.pem: the private key does not match the certificate/);

    const garbage = new CertbotDir(path.join(root, 'garbage'));
    garbage.install(pairs.a.certPem, 'garbage');
    await assert.rejects(attempt(garbage), /^Error: tls\.keyFile .*key\.pem: cannot parse the private key/);
  });

  it('reports not ready when the certificate is about to expire', async () => {
    const dir = new CertbotDir(path.join(root, 'expiring'));
    // A one-day certificate with a little over two hours left: inside the last sixth of its life.
    const expiring = await createSelfSigned(['files.test'], 1, 'ecdsa-p256', new Date(Date.now() - 22 * 60 * 60 * 1000));
    dir.install(expiring.certPem, expiring.keyPem);
    const served = await serve(dir, {});
    try {
      const readiness = served.runtime.readiness();
      assert.equal(readiness.ready, false);
      assert.match(readiness.reason ?? '', /the TLS certificate expires at /);
    } finally {
      await served.close();
    }
  });
});
