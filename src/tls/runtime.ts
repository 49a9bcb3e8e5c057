import { generateKeyPairSync } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import type { Config } from '../config/types.js';
import type { Logger } from '../observe/logger.js';
import { ACME_TLS_ALPN, Http01Responder, TlsAlpn01Responder } from './acme/challenges.js';
import type { Responders } from './acme/issuer.js';
import type { AcmeManager } from './acme/manager.js';
import type { AcmeFleet } from './acme/fleet.js';
import type { Redis } from 'ioredis';
import { connectAtStart, redisClient, type RedisHealth, type RedisTarget } from '../state/redis-client.js';
import { routeByClientHello } from './alpn-router.js';
import { CertificateSlot, SERVER_TLS_OPTIONS } from './slot.js';
import { filesSource, selfSignedSource, type CertificateSource } from './sources.js';
import { expiryMargin, type Backoff } from './timing.js';
import { validateTlsConfig } from './validate.js';

export interface TlsRuntime {
  /**
   * The main listener around `handler`: an https.Server (TLS 1.2 minimum), or an http.Server
   * for mode "off". `configure` gets the server before it is returned (timeouts etc.). With ACME
   * TLS-ALPN-01 the server reads each ClientHello before the handshake to route validation
   * connections; for everything else it is a plain https.Server.
   */
  createMainServer(handler: http.RequestListener, configure: (server: http.Server) => void, options?: http.ServerOptions): net.Server;
  /** For the plain-HTTP listener: answers /.well-known/acme-challenge/* and returns true; false otherwise. */
  answerHttpChallenge(req: http.IncomingMessage, res: http.ServerResponse): boolean;
  /**
   * For /readyz: a certificate is loaded and not close to expiry; always ready for mode "off".
   * `degraded`: ready, but not as it should be.
   */
  readiness(): { ready: boolean; reason?: string; degraded?: string };
  /** The PEM a client should trust as its CA in mode "self-signed" (the certificate itself); null otherwise. */
  clientCaPem(): string | null;
  /** When the certificate being served expires; null without one (mode "off", or none loaded yet). */
  notAfter(): Date | null;
  /** ACME orders since start by result; null unless tls.mode is "acme". */
  acmeOrders(): Readonly<{ issued: number; failed: number }> | null;
  /** Loads or creates the certificate, then starts watchers / ACME ordering in the background. */
  start(): Promise<void>;
  /** SIGHUP: the certificate files (mode "files") are read again now. */
  reread(): void;
  /** Stops watchers and timers; servers are the caller's to close. */
  close(): Promise<void>;
}

/** Internal knobs, not part of the config file: tests shorten them; the defaults suit production. */
export interface TlsTuning {
  /** Delay between failed ACME attempts, doubling from minMs up to maxMs. */
  acmeRetry: Backoff;
  /** A replica that found another one ordering looks again after this (plus up to as much at random). */
  acmeRecheckMs: number;
  filesPollMs: number;
  filesDebounceMs: number;
  /** How long a client may take to send its ClientHello when it must be read before the handshake. */
  clientHelloTimeoutMs: number;
}

const DEFAULT_TUNING: TlsTuning = {
  acmeRetry: { minMs: 5_000, maxMs: 60 * 60 * 1000 },
  acmeRecheckMs: 15_000,
  filesPollMs: 30_000,
  filesDebounceMs: 1_000,
  clientHelloTimeoutMs: 10_000,
};

export async function createTlsRuntime(
  config: Config,
  deps: { logger: Logger; tuning?: Partial<TlsTuning>; redis?: { target: RedisTarget; health: RedisHealth } },
): Promise<TlsRuntime> {
  const problems = validateTlsConfig(config.tls);
  if (problems.length > 0) throw new Error(problems.join('; '));
  const tuning = { ...DEFAULT_TUNING, ...deps.tuning };
  const logger = deps.logger;
  const { tls } = config;
  const slot = new CertificateSlot();

  let source: CertificateSource | null = null;
  let acme: { manager: AcmeManager; responders: Responders } | null = null;
  switch (tls.mode) {
    case 'self-signed':
      source = selfSignedSource(config.stateDir, tls.names, tls.selfSignedKey, slot, logger);
      break;
    case 'files':
      source = filesSource(tls, slot, logger, { pollMs: tuning.filesPollMs, debounceMs: tuning.filesDebounceMs });
      break;
    case 'acme': {
      // Loaded only in this mode: acme-client and its HTTP stack add 12–15 MiB to the proxy's resident memory.
      const [{ AcmeManager }, fleet] = await Promise.all([import('./acme/manager.js'), deps.redis ? openFleet(deps.redis.target, tls.acme.storageDir, logger, deps.redis.health) : null]);
      const responders: Responders = {
        alpnKeyPem: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
        ...(tls.acme.challenges.includes('http-01') ? { 'http-01': new Http01Responder(logger, fleet) } : {}),
        ...(tls.acme.challenges.includes('tls-alpn-01') ? { 'tls-alpn-01': new TlsAlpn01Responder(logger, fleet) } : {}),
      };
      const caPem = tls.acme.caFile ? await readCaFile(tls.acme.caFile) : null;
      const manager = new AcmeManager({
        acme: tls.acme,
        caPem,
        slot,
        responders,
        retry: tuning.acmeRetry,
        logger,
        ...(fleet ? { fleet, recheckMs: tuning.acmeRecheckMs } : {}),
      });
      acme = { manager, responders };
      source = { start: () => manager.start(), close: () => manager.close() };
      break;
    }
    case 'off':
      break;
  }

  return {
    createMainServer(handler, configure, options = {}) {
      if (tls.mode === 'off') {
        const server = http.createServer(options, handler);
        configure(server);
        return server;
      }
      const server = https.createServer({ ...options, ...SERVER_TLS_OPTIONS }, handler);
      const alpn = acme?.responders['tls-alpn-01'];
      // Before configure(): 'connection' listeners the caller adds there must see every socket at accept time.
      if (alpn) {
        routeByClientHello(server, (hello) => (hello.alpn.includes(ACME_TLS_ALPN) ? alpn.server : null), tuning.clientHelloTimeoutMs);
      }
      configure(server);
      slot.attach(server);
      return server;
    },

    answerHttpChallenge(req, res) {
      return acme?.responders['http-01']?.answer(req, res) ?? false;
    },

    notAfter() {
      return slot.get()?.info.notAfter ?? null;
    },
    acmeOrders() {
      return acme?.manager.orders ?? null;
    },
    readiness() {
      if (tls.mode === 'off') return { ready: true };
      const active = slot.get();
      if (!active) return { ready: false, reason: 'no TLS certificate loaded yet' };
      if (active.origin === 'temporary') {
        const failure = acme?.manager.lastFailure;
        const reason = `waiting for the ACME certificate for ${tls.acme.domains.join(', ')} (serving a temporary self-signed one)${failure ? `; last attempt failed: ${failure}` : ''}`;
        // Replicas behind a Service or a balancer that checks /readyz receive only when ready, the
        // CA's validation included; all of them wait for the same first order, so unready would
        // leave the CA nobody to reach. Any replica answers the challenge from Redis.
        return deps.redis ? { ready: true, degraded: reason } : { ready: false, reason };
      }
      const { notAfter } = active.info;
      if (notAfter.getTime() - Date.now() < expiryMargin(active.info)) {
        const verb = notAfter.getTime() <= Date.now() ? 'expired' : 'expires';
        return { ready: false, reason: `the TLS certificate ${verb} at ${notAfter.toISOString()}` };
      }
      return { ready: true };
    },

    clientCaPem() {
      const active = slot.get();
      return active?.origin === 'self-signed' ? active.pair.certPem : null;
    },

    async start() {
      await source?.start();
    },

    reread() {
      source?.reread?.();
    },
    async close() {
      source?.close();
    },
  };
}

/** The Redis side of ACME for replicas; a Redis that does not answer at start stops the start, as for the token key. */
async function openFleet(target: RedisTarget, storageDir: string, logger: Logger, health: RedisHealth): Promise<AcmeFleet> {
  const [{ AcmeFleet }, { AcmeStorage }] = await Promise.all([import('./acme/fleet.js'), import('./acme/storage.js')]);
  const effect = { away: 'ACME orders and certificate sharing between replicas wait for it; the certificate served stays', back: 'ACME coordination resumes' };
  const connect = (role: string): Redis => health.watch(redisClient(target, 1), role, effect, logger, target);
  const commands = connect('ACME coordination');
  const subscriber = connect('ACME announcements');
  await connectAtStart([commands, subscriber], target, 'ACME between replicas');
  return new AcmeFleet(commands, subscriber, new AcmeStorage(storageDir), target.box, logger);
}

async function readCaFile(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new Error(`tls.acme.caFile ${file}: cannot read: ${(err as Error).message}`);
  }
}
