import http, { type Server } from 'node:http';
import type { Server as NetServer } from 'node:net';
import { prepareStateDir } from './files/state-dir.js';
import type { Config } from './config/types.js';
import { parseListenAddress, urlHostPort, type ListenAddress } from './config/address.js';
import type { Logger } from './observe/logger.js';
import { upstreamProbe, watchUpstreamAtStart } from './observe/health.js';
import { createPipeline } from './pipeline.js';
import { AuthGate } from './auth/gate.js';
import { TokenAuthority } from './auth/token.js';
import { VerifyPool } from './auth/verify-pool.js';
import { FileKeyStore } from './state/signing-key.js';
import { RedisKeyStore } from './state/redis-key-store.js';
import { RedisInvalidations } from './state/redis-invalidations.js';
import { createForwarder } from './proxy/forward.js';
import { UpstreamClient } from './proxy/upstream-client.js';
import { AccessPolicy } from './access/policy.js';
import { AccessRules, rulesForMode } from './access/rules.js';
import { GroupDirectory } from './access/groups.js';
import { ProtectedTags } from './access/protected-tags.js';
import { openAuditLog, throttleFailedLogins } from './audit/audit-log.js';
import { Identifier } from './auth/identify.js';
import { createSources } from './auth/sources/create.js';
import { FileRefreshStore, RedisRefreshStore, RefreshTokens } from './auth/refresh-tokens.js';
import { TokensSource } from './auth/sources/tokens.js';
import { TokenManager } from './auth/access-tokens/manage.js';
import { connectAtStart, RedisHealth, redisClient, redisTarget } from './state/redis-client.js';
import { ResponseCache } from './cache/response-cache.js';
import { sendRegistryError } from './registry/errors.js';
import { hostName, PeerTrust } from './proxy/client-view.js';
import { hostMatcher, knownNames, MISDIRECTED_MESSAGE } from './proxy/known-hosts.js';
import { limitConnections } from './proxy/connection-limits.js';
import { createTlsRuntime } from './tls/runtime.js';
import { clientTimeouts, configureTimeouts, serverOptions } from './proxy/timeouts.js';
import { Drain } from './lifecycle/drain.js';
import { Metrics } from './observe/metrics.js';
import { planReload, withReloaded, type ReloadPlan } from './lifecycle/reload.js';

export interface RunningServer {
  /** Where the main listener ended up (port 0 in the config picks a free one). */
  address: ListenAddress;
  /** SIGHUP: files that logrotate moves are opened anew. */
  reopenLogs(): void;
  /**
   * SIGHUP with a config that loaded and validated: applies what can change while running (see
   * lifecycle/reload.ts), reads htpasswd, htgroup and certificate files again, and says what waits
   * for the next start.
   */
  reload(next: Config): Promise<ReloadPlan>;
  /** SIGTERM: stop accepting, let pushes under way finish for up to `drainSeconds`, then stop. A second call cuts at once. */
  close(): Promise<void>;
}

const PLAIN_CLOSE_MS = 2_000;

export interface StartOptions {
  /** How the operator runs the CLI, for hints in the log (cli/self-command.ts). */
  selfCommand?: string;
}

/** Builds every part from the config, opens the listeners, and returns a handle to stop them. */
export async function startServer(config: Config, logger: Logger, options: StartOptions = {}): Promise<RunningServer> {
  await prepareStateDir(config.stateDir);
  const authenticates = config.auth.mode !== 'none';
  const pool = authenticates ? new VerifyPool() : null;
  const redis = await redisTarget(config);
  const redisHealth = new RedisHealth();
  const sources = pool
    ? await createSources(config, { logger, pool, redis, health: redisHealth, follow: true, ...(options.selfCommand ? { selfCommand: options.selfCommand } : {}) })
    : null;
  const authority =
    authenticates && config.auth.challenge === 'token'
      ? new TokenAuthority(await (redis ? new RedisKeyStore(redis) : new FileKeyStore(config.stateDir)).load(), {
          ttlSeconds: config.auth.tokenTtlSeconds,
          issuer: 'registry-gate',
        })
      : null;
  // Failed logins count together across replicas through Redis; memory stands in while it is away.
  const loginRedis =
    sources && redis
      ? redisHealth.watch(
          redisClient(redis, 1),
          'failed-login counts',
          { away: 'failed logins count per replica until Redis is back', back: 'failed logins count across replicas again' },
          logger,
          redis,
        )
      : null;
  if (loginRedis && redis) await connectAtStart([loginRedis], redis, 'the failed-login counts');
  const identifier = sources ? new Identifier(sources, config.loginLimits, loginRedis) : null;
  const refresh =
    sources && authority && config.auth.refreshTokenDays > 0
      ? new RefreshTokens(
          redis ? await RedisRefreshStore.open(redis, redisHealth, logger) : await FileRefreshStore.open(config.stateDir),
          config.auth.refreshTokenDays,
          (name) => sources.find((s) => s.name === name)?.maxJobSeconds ?? null,
        )
      : null;
  const tokensSource = sources?.find((s): s is TokensSource => s instanceof TokensSource) ?? null;
  let groups = await GroupDirectory.open(config.groups, config.groupsFile, { logger });
  const protectedTags = new ProtectedTags(config.protectedTags);
  const policy = new AccessPolicy(new AccessRules(config.access ?? rulesForMode(config.auth.mode)), groups, config.auth.publicCatalog, protectedTags.claimPaths());
  const audit = throttleFailedLogins(openAuditLog(config.audit.file, logger));
  const forwarder = createForwarder({ upstream: config.upstream, timeoutSeconds: config.upstreamTimeoutSeconds, logger });
  let fanout: RedisInvalidations | null = null;
  const cache = config.cache.ttlSeconds > 0 ? new ResponseCache({ ...config.cache, onWrite: (repository) => fanout?.publish(repository) }) : null;
  if (cache && redis) fanout = await RedisInvalidations.open(redis, (repository) => cache.writtenElsewhere(repository), { logger, health: redisHealth, shared: (up) => cache.setShared(up) });
  const tls = await createTlsRuntime(config, { logger, ...(redis ? { redis: { target: redis, health: redisHealth } } : {}) });
  await tls.start();
  const probeUpstream = upstreamProbe(config.upstream);
  const drain = new Drain({ drainSeconds: config.drainSeconds, logger });
  // Only when asked for: collecting costs ~1 µs a request and the process metrics sample the event loop.
  const metrics = config.metrics.listen !== null ? new Metrics(tls) : null;

  const handler = createPipeline({
    config,
    logger,
    gate: new AuthGate(config.auth, identifier, authority, policy),
    policy,
    protectedTags,
    audit,
    upstream: new UpstreamClient(config.upstream, config.upstreamTimeoutSeconds * 1000),
    identifier,
    authority,
    tokens: tokensSource ? new TokenManager(tokensSource) : null,
    refresh,
    forwarder,
    cache,
    drain,
    metrics: metrics ?? undefined,
    readiness: async () => {
      if (drain.draining) return ['shutting down'];
      const reasons: string[] = [];
      const upstream = await probeUpstream();
      if (upstream) reasons.push(upstream);
      const cert = tls.readiness();
      if (!cert.ready) reasons.push(cert.reason ?? 'certificate not ready');
      return reasons;
    },
    degraded: () => {
      const cert = tls.readiness().degraded;
      return [...(cert ? [cert] : []), ...redisHealth.reasons(), ...(identifier?.degraded() ?? [])];
    },
  });

  const trust = new PeerTrust(config.trustedProxies);
  const timeouts = clientTimeouts(config);
  const main = tls.createMainServer(
    handler,
    (s) => {
      configureTimeouts(s, timeouts);
      limitConnections(s, { max: config.limits.maxConnections, perClient: config.limits.maxConnectionsPerClient, trust, logger });
    },
    serverOptions(timeouts),
  );
  drain.watch(main);
  const mainAddress = await listen(main, parseListenAddress(config.listen) as ListenAddress);
  let plainServer: Server | null = null;
  let metricsServer: Server | null = null;
  if (metrics && config.metrics.listen !== null) {
    metricsServer = http.createServer(metrics.handler);
    const bound = await listen(metricsServer, parseListenAddress(config.metrics.listen) as ListenAddress);
    logger.info({ address: `${bound.host}:${bound.port}` }, `metrics on http://${urlHostPort(bound)}/metrics`);
  }

  if (config.httpListen !== null) {
    const isKnownHost = hostMatcher(knownNames(config));
    const plain = http.createServer(serverOptions(timeouts), (req, res) => {
      if (tls.answerHttpChallenge(req, res)) return;
      // Probes often speak plain HTTP; they get the real answers, not a redirect.
      if (req.url === '/healthz' || req.url === '/readyz') return handler(req, res);
      redirectToHttps(req, res, mainAddress.port, isKnownHost);
    });
    configureTimeouts(plain, timeouts);
    const plainAddress = await listen(plain, parseListenAddress(config.httpListen) as ListenAddress);
    plainServer = plain;
    logger.info({ address: `${plainAddress.host}:${plainAddress.port}` }, 'plain HTTP listener: ACME HTTP-01 answers, everything else redirects to https');
  }

  logger.info(
    {
      address: `${mainAddress.host}:${mainAddress.port}`,
      scheme: config.tls.mode === 'off' ? 'http' : 'https',
      upstream: config.upstream,
      tls: config.tls.mode,
      auth: config.auth.mode,
      challenge: config.auth.challenge,
    },
    `listening on ${config.tls.mode === 'off' ? 'http' : 'https'}://${mainAddress.host}:${mainAddress.port}, forwarding /v2/ to ${config.upstream}`,
  );

  let running = config;
  let reloading = Promise.resolve();
  const reload = async (next: Config): Promise<ReloadPlan> => {
    const plan = planReload(running, next);
    if (plan.apply.includes('groups') || plan.apply.includes('groupsFile')) {
      const old = groups;
      groups = await GroupDirectory.open(next.groups, next.groupsFile, { logger });
      await old.close();
    } else {
      await groups.reload();
    }
    protectedTags.replace(next.protectedTags);
    policy.replace(new AccessRules(next.access ?? rulesForMode(config.auth.mode)), groups, next.auth.publicCatalog, protectedTags.claimPaths());
    logger.level = next.log.level;
    await identifier?.reload();
    tls.reread();
    running = withReloaded(running, next);
    return plan;
  };

  const upstreamWatch = watchUpstreamAtStart(probeUpstream, { warn: (m) => logger.warn(m), info: (m) => logger.info(m) });

  return {
    address: mainAddress,
    reopenLogs: () => audit.reopen(),
    reload(next) {
      const done = reloading.then(() => reload(next));
      reloading = done.then(
        () => undefined,
        () => undefined,
      );
      return done;
    },
    async close() {
      if (drain.draining) return drain.drain();
      upstreamWatch.stop();
      await Promise.all([drain.drain(), plainServer && closeShortLived(plainServer), metricsServer && closeShortLived(metricsServer)]);
      forwarder.close();
      fanout?.close();
      await tls.close();
      await identifier?.close();
      await refresh?.close();
      loginRedis?.disconnect();
      await groups.close();
      await audit.close();
      await pool?.close();
    },
  };
}

function redirectToHttps(req: http.IncomingMessage, res: http.ServerResponse, httpsPort: number, isKnownHost: (host: string) => boolean): void {
  const name = hostName(req.headers.host ?? '');
  const path = req.url ?? '/';
  if (name === null || !path.startsWith('/')) return sendRegistryError(res, 'BAD_REQUEST', 'missing or malformed Host header');
  if (!isKnownHost(req.headers.host ?? '')) return sendRegistryError(res, 'MISDIRECTED', MISDIRECTED_MESSAGE);
  const port = httpsPort === 443 ? '' : `:${httpsPort}`;
  res.writeHead(308, { location: `https://${name}${port}${path}`, 'content-length': 0 });
  res.end();
}

/**
 * Connections the kernel queues before the proxy accepts them. Node's default, 511, is smaller
 * than a crowd of clients starting at once (1,000 pulls as a deployment starts on many nodes):
 * measured, 15% of such a crowd's connections overflowed the queue and had their SYN dropped,
 * to be retried by the client a second later. The kernel caps it at net.core.somaxconn.
 */
const LISTEN_BACKLOG = 4096;

function listen(server: NetServer, address: ListenAddress): Promise<ListenAddress> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: address.port, host: address.host, backlog: LISTEN_BACKLOG }, () => {
      server.off('error', reject);
      const bound = server.address();
      resolve(typeof bound === 'object' && bound ? { host: address.host, port: bound.port } : address);
    });
  });
}

/** A listener of short answers only (redirects, ACME, metrics): a moment for those under way, then closed. */
function closeShortLived(server: Server): Promise<void> {
  return new Promise((resolve) => {
    const force = setTimeout(() => server.closeAllConnections(), PLAIN_CLOSE_MS);
    server.close(() => {
      clearTimeout(force);
      resolve();
    });
  });
}
