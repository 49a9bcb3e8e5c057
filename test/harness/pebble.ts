import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import tls from 'node:tls';
import { defaultConfig } from '../../src/config/defaults.js';
import type { AcmeChallengeType, Config } from '../../src/config/types.js';
import { createLogger, type Logger } from '../../src/observe/logger.js';
import { createTlsRuntime, type TlsRuntime } from '../../src/tls/runtime.js';
import { trackDir, trackPid, untrackDir, untrackPid } from './cleanup.js';

/**
 * A real pebble ACME server with pebble-challtestsrv as its DNS (every name resolves to
 * 127.0.0.1), on free loopback ports. Pebble validates HTTP-01 on `httpPort` and TLS-ALPN-01 on
 * `tlsPort`, so the runtime under test must listen exactly there; one pebble per test file.
 */
export interface PebbleOptions {
  httpPort: number;
  tlsPort: number;
  /** Lifetime of issued certificates in seconds (pebble's default is 5 years). */
  validitySeconds?: number;
}

export interface Pebble {
  directoryUrl: string;
  /** CA of pebble's own HTTPS endpoints (tls.acme.caFile); not the CA that signs issued certificates. */
  caFile: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Pebble keeps everything in memory: a restart forgets accounts and orders and makes a new root. */
  restart(): Promise<void>;
  /** The root that issued certificates chain to (changes at every pebble start). */
  rootPem(): Promise<string>;
  /** Orders pebble has accepted since it was created (across restarts). */
  orderCount(): number;
  /** Serials pebble issued, lower-case hex without leading zeros. */
  issuedSerials(): string[];
  log(): string;
}

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Created but not started, so that a test can first see the runtime cope with an absent CA. */
export async function createPebble(options: PebbleOptions): Promise<Pebble> {
  const dir = mkdtempSync(path.join(tmpdir(), 'pebble-'));
  trackDir(dir);
  const [acmePort, managementPort, dnsPort, challtestPort] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  const caFile = makeTlsMaterial(dir);
  const configFile = path.join(dir, 'pebble-config.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${acmePort}`,
        managementListenAddress: `127.0.0.1:${managementPort}`,
        certificate: path.join(dir, 'server.pem'),
        privateKey: path.join(dir, 'server.key'),
        httpPort: options.httpPort,
        tlsPort: options.tlsPort,
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
        ...(options.validitySeconds ? { certificateValidityPeriod: options.validitySeconds } : {}),
      },
    }),
  );
  const caPem = readFileSync(caFile, 'utf8');
  const directoryUrl = `https://127.0.0.1:${acmePort}/dir`;
  let output = '';
  let children: ChildProcess[] = [];

  const spawnTracked = (command: string, args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess => {
    const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    if (child.pid) trackPid(child.pid);
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    children.push(child);
    return child;
  };

  const launch = async (): Promise<void> => {
    spawnTracked('pebble-challtestsrv', [
      '-defaultIPv4', '127.0.0.1',
      // Without this pebble also gets ::1 and validates there, where nothing listens.
      '-defaultIPv6', '',
      // Its own challenge responders would take pebble's validation ports.
      '-http01', '', '-https01', '', '-tlsalpn01', '',
      '-dns01', `127.0.0.1:${dnsPort}`,
      '-management', `127.0.0.1:${challtestPort}`,
    ]);
    spawnTracked('pebble', ['-config', configFile, '-dnsserver', `127.0.0.1:${dnsPort}`], {
      PEBBLE_VA_NOSLEEP: '1',
      PEBBLE_WFE_NONCEREJECT: '0',
      PEBBLE_AUTHZREUSE: '0',
    });
    await waitFor(() => httpsGet(directoryUrl, caPem).then(() => true), `pebble at ${directoryUrl}`, () => output);
  };

  const halt = async (): Promise<void> => {
    const exited = children.map((child) => new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(null) : child.once('exit', resolve))));
    for (const child of children) {
      child.kill('SIGTERM');
      if (child.pid) untrackPid(child.pid);
    }
    await Promise.all(exited);
    children = [];
  };

  return {
    directoryUrl,
    caFile,
    start: launch,
    async stop() {
      await halt();
      rmSync(dir, { recursive: true, force: true });
      untrackDir(dir);
    },
    async restart() {
      await halt();
      await launch();
    },
    rootPem: () => httpsGet(`https://127.0.0.1:${managementPort}/roots/0`, caPem),
    orderCount: () => (output.match(/Added order /g) ?? []).length,
    issuedSerials: () => [...output.matchAll(/Issued certificate serial ([0-9a-f]+)/g)].map((m) => m[1]!.replace(/^0+/, '')),
    log: () => output,
  };
}

export async function startPebble(options: PebbleOptions): Promise<Pebble> {
  const pebble = await createPebble(options);
  await pebble.start();
  return pebble;
}

/** A throwaway CA and a server certificate for 127.0.0.1, for pebble's own HTTPS endpoints. */
function makeTlsMaterial(dir: string): string {
  const file = (name: string): string => path.join(dir, name);
  const openssl = (args: string[]): void => {
    execFileSync('openssl', args, { stdio: 'pipe' });
  };
  const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl(['req', '-x509', ...ecKey, '-keyout', file('ca.key'), '-out', file('ca.pem'), '-subj', '/CN=pebble test CA', '-days', '2']);
  openssl(['req', ...ecKey, '-keyout', file('server.key'), '-out', file('server.csr'), '-subj', '/CN=127.0.0.1']);
  writeFileSync(file('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  openssl([
    'x509', '-req', '-in', file('server.csr'), '-CA', file('ca.pem'), '-CAkey', file('ca.key'), '-CAcreateserial',
    '-out', file('server.pem'), '-days', '2', '-extfile', file('server.ext'),
  ]);
  return file('ca.pem');
}

function httpsGet(url: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ca, agent: false, timeout: 2_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`${url}: HTTP ${res.statusCode}`))));
    });
    req.on('timeout', () => req.destroy(new Error(`${url}: timeout`)));
    req.on('error', reject);
  });
}

export async function waitFor(check: () => Promise<boolean>, what: string, context: () => string = () => '', timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = null;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (err) {
      last = err;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out waiting for ${what}: ${(last as Error | null)?.message ?? 'condition false'}\n${context()}`);
}

// ---- helpers for the ACME end-to-end tests -------------------------------------------------

export interface TlsProbe {
  status: number;
  body: string;
  /** Serial of the certificate the server presented, lower-case hex without leading zeros. */
  serial: string;
}

/** One HTTPS request on a new connection to 127.0.0.1 with SNI `servername`, trusting only `ca`. */
export function probeTls(port: number, servername: string, ca: string | null): Promise<TlsProbe> {
  return new Promise((resolve, reject) => {
    const req = https.get(
      {
        host: '127.0.0.1',
        port,
        servername,
        path: '/probe',
        agent: false,
        timeout: 5_000,
        ...(ca === null ? { rejectUnauthorized: false } : { ca }),
      },
      (res) => {
        const serial = (res.socket as tls.TLSSocket).getPeerCertificate().serialNumber.toLowerCase().replace(/^0+/, '');
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, serial }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('probe timed out')));
    req.on('error', reject);
  });
}

/** A real pino logger (the project's) whose JSON lines are kept for assertions. */
export function captureLogs(): { logger: Logger; entries(): Array<Record<string, unknown>> } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  return {
    logger: createLogger('debug', sink),
    entries: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

/** Effective config for mode "acme" against `pebble`, with every other section at its default. */
export function acmeConfig(pebble: Pebble, storageDir: string, challenges: AcmeChallengeType[], domains = ['registry.test']): Config {
  const config = defaultConfig();
  return {
    ...config,
    stateDir: storageDir,
    tls: {
      ...config.tls,
      mode: 'acme',
      acme: { ...config.tls.acme, domains, challenges, directoryUrl: pebble.directoryUrl, caFile: pebble.caFile, storageDir },
    },
  };
}

export interface ServedRuntime {
  runtime: TlsRuntime;
  close(): Promise<void>;
}

/**
 * A started runtime whose main server listens on `tlsPort` (answering "ok") and, when
 * `httpPort` is given, a plain-HTTP listener answering HTTP-01 there; short ACME retries.
 */
export async function serveTlsRuntime(config: Config, logger: Logger, ports: { tlsPort: number; httpPort?: number }): Promise<ServedRuntime> {
  const runtime = await createTlsRuntime(config, { logger, tuning: { acmeRetry: { minMs: 200, maxMs: 1_000 } } });
  await runtime.start();
  const main = runtime.createMainServer((_req, res) => res.end('ok'), () => undefined);
  const servers: Array<net.Server & { closeAllConnections?: () => void }> = [main];
  await new Promise<void>((resolve) => main.listen(ports.tlsPort, '127.0.0.1', resolve));
  if (ports.httpPort !== undefined) {
    const plain = http.createServer((req, res) => {
      if (!runtime.answerHttpChallenge(req, res)) res.writeHead(404).end();
    });
    servers.push(plain);
    await new Promise<void>((resolve) => plain.listen(ports.httpPort, '127.0.0.1', resolve));
  }
  return {
    runtime,
    async close() {
      await runtime.close();
      await Promise.all(
        servers.map((server) => {
          const closed = new Promise((resolve) => server.close(resolve));
          server.closeAllConnections?.();
          return closed;
        }),
      );
    },
  };
}

export interface KeepAliveClient {
  serial: string;
  /** A request on the same connection as the first one (`reused` says it really was). */
  request(): Promise<{ status: number; serial: string; reused: boolean }>;
  close(): void;
}

/** One keep-alive connection, to show that certificate swaps leave open connections alone. */
export async function keepAliveClient(port: number, servername: string, ca: string): Promise<KeepAliveClient> {
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca, servername });
  let first: tls.TLSSocket | null = null;
  const once = (): Promise<{ status: number; serial: string; socket: tls.TLSSocket }> =>
    new Promise((resolve, reject) => {
      const req = https.get({ host: '127.0.0.1', port, servername, path: '/keepalive', agent }, (res) => {
        const socket = res.socket as tls.TLSSocket;
        res.resume();
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, serial: socket.getPeerCertificate().serialNumber.toLowerCase().replace(/^0+/, ''), socket }),
        );
      });
      req.on('error', reject);
    });
  const initial = await once();
  first = initial.socket;
  return {
    serial: initial.serial,
    async request() {
      const { status, serial, socket } = await once();
      return { status, serial, reused: socket === first };
    },
    close: () => agent.destroy(),
  };
}
