import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import type http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { defaultConfig } from '../../src/config/defaults.js';
import type { Config } from '../../src/config/types.js';
import { createTlsRuntime, type TlsRuntime } from '../../src/tls/runtime.js';
import { captureLogs, probeTls } from '../harness/pebble.js';

const run = promisify(execFile);

function selfSignedConfig(stateDir: string, names: string[]): Config {
  const config = defaultConfig();
  return { ...config, stateDir, tls: { ...config.tls, mode: 'self-signed', names } };
}

/** Just enough of the registry API for a client to get past TLS and report "manifest unknown". */
function registryStub(req: http.IncomingMessage, res: http.ServerResponse): void {
  res.setHeader('Docker-Distribution-Api-Version', 'registry/2.0');
  res.setHeader('Content-Type', 'application/json');
  if (req.url === '/v2/') {
    res.end('{}');
    return;
  }
  res.writeHead(404).end('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":null}]}');
}

async function serve(runtime: TlsRuntime): Promise<{ port: number; server: net.Server }> {
  const server = runtime.createMainServer(registryStub, () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as net.AddressInfo).port, server };
}

describe('self-signed mode', () => {
  let stateDir: string;
  let runtime: TlsRuntime;
  let port: number;
  let server: net.Server;
  const logs = captureLogs();
  const certFile = (): string => path.join(stateDir, 'tls', 'self-signed-cert.pem');

  before(async () => {
    stateDir = mkdtempSync(path.join(tmpdir(), 'tls-self-signed-'));
    runtime = await createTlsRuntime(selfSignedConfig(stateDir, ['localhost', '127.0.0.1']), { logger: logs.logger });
    await runtime.start();
    ({ port, server } = await serve(runtime));
  });

  after(async () => {
    server.close();
    await runtime.close();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('stores the certificate and a private key only the owner can read, and logs where', () => {
    assert.equal(readFileSync(certFile(), 'utf8'), runtime.clientCaPem());
    assert.equal(statSync(path.join(stateDir, 'tls', 'self-signed-key.pem')).mode & 0o777, 0o600);
    assert.ok(logs.entries().some((e) => e.certFile === certFile() && String(e.msg).includes('/etc/docker/certs.d/')));
    assert.deepEqual(runtime.readiness(), { ready: true });
  });

  it('is accepted as the trust anchor by Node for its DNS name and its IP address', async () => {
    const ca = runtime.clientCaPem()!;
    assert.equal((await probeTls(port, 'localhost', ca)).status, 404);
    // No SNI for an IP address: the IP SAN has to match.
    const byIp = await new Promise<number>((resolve, reject) => {
      https
        .get({ host: '127.0.0.1', port, path: '/v2/', ca, agent: false }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        })
        .on('error', reject);
    });
    assert.equal(byIp, 200);
  });

  it('is accepted by OpenSSL with strict verification', async () => {
    const { stdout } = await run('sh', [
      '-c',
      `openssl s_client -connect 127.0.0.1:${port} -servername localhost -CAfile "$1" -verify_return_error -verify_hostname localhost </dev/null 2>&1`,
      'sh',
      certFile(),
    ]);
    assert.match(stdout, /Verify return code: 0 \(ok\)/);
  });

  it('is accepted by Go clients (skopeo) given as ca.crt in a cert dir', async (t) => {
    if (!(await run('sh', ['-c', 'command -v skopeo']).then(() => true, () => false))) {
      t.skip('skopeo not installed');
      return;
    }
    const certDir = path.join(stateDir, 'client-certs');
    mkdirSync(certDir);
    writeFileSync(path.join(certDir, 'ca.crt'), runtime.clientCaPem()!);
    const inspect = (extra: string[]): Promise<string> =>
      run('skopeo', ['inspect', '--retry-times', '0', ...extra, `docker://127.0.0.1:${port}/demo:latest`], { timeout: 60_000 }).then(
        () => 'unexpected success',
        (err: { stderr: string }) => err.stderr,
      );
    const trusted = await inspect(['--cert-dir', certDir]);
    assert.match(trusted, /manifest unknown/i, trusted);
    assert.doesNotMatch(trusted, /x509|certificate/i);
    // Without it the same request fails on TLS, so the first result really came from trusting the file.
    assert.match(await inspect([]), /x509|certificate/i);
  });

  it('reuses the stored certificate after a restart', async () => {
    const again = await createTlsRuntime(selfSignedConfig(stateDir, ['127.0.0.1', 'localhost']), { logger: logs.logger });
    await again.start();
    assert.equal(again.clientCaPem(), runtime.clientCaPem());
    await again.close();
  });

  it('makes a new certificate when tls.names changes', async () => {
    const changed = await createTlsRuntime(selfSignedConfig(stateDir, ['localhost', 'registry.lan']), { logger: logs.logger });
    await changed.start();
    assert.notEqual(changed.clientCaPem(), runtime.clientCaPem());
    const { port: changedPort, server: changedServer } = await serve(changed);
    assert.equal((await probeTls(changedPort, 'registry.lan', changed.clientCaPem())).status, 404);
    changedServer.close();
    await changed.close();
  });
});
