import type { Config } from './types.js';

export const LETSENCRYPT_PRODUCTION = 'https://acme-v02.api.letsencrypt.org/directory';
export const LETSENCRYPT_STAGING = 'https://acme-staging-v02.api.letsencrypt.org/directory';

/** The nginx recipe's list: docker 1.3–1.5 (except 1.5.x-dev) and bare Go clients cannot speak v2 properly. */
export const RECIPE_BLOCKED_USER_AGENTS = ['^(docker\\/1\\.(3|4|5(?!\\.[0-9]-dev))|Go ).*$'];

/**
 * What applies when a key is absent. `tls.acme.storageDir` is absent on purpose: it follows
 * `stateDir` unless set (see load.ts).
 */
export function defaultConfig(): Config {
  return {
    listen: '0.0.0.0:443',
    httpListen: null,
    upstream: 'http://127.0.0.1:5000',
    trustedProxies: [],
    tls: {
      mode: 'self-signed',
      certFile: null,
      keyFile: null,
      names: ['localhost', '127.0.0.1'],
      selfSignedKey: 'ecdsa-p256',
      acme: {
        domains: [],
        email: null,
        directoryUrl: LETSENCRYPT_PRODUCTION,
        challenges: ['tls-alpn-01', 'http-01'],
        caFile: null,
        storageDir: '',
        renewBeforeDays: 30,
        eab: null,
      },
    },
    auth: {
      mode: 'private',
      challenge: 'token',
      realm: 'Registry realm',
      htpasswdFile: './auth/htpasswd',
      tokenTtlSeconds: 300,
      refreshTokenDays: 30,
      publicCatalog: false,
      tokenRealm: null,
      tokenService: null,
      sources: [],
    },
    stateDir: './data',
    blockUserAgents: [...RECIPE_BLOCKED_USER_AGENTS],
    upstreamTimeoutSeconds: 900,
    drainSeconds: 30,
    cache: { ttlSeconds: 2, maxMegabytes: 16 },
    redis: null,
    redisOptions: { sentinels: [], sentinelPassword: null, caFile: null, secretKeyFile: null, secretKey: null },
    log: { level: 'info' },
    access: null,
    groups: {},
    groupsFile: null,
    protectedTags: [],
    audit: { file: null },
    cors: { allowedOrigins: [] },
    metrics: { listen: null },
    limits: { maxConnections: 20_000, maxConnectionsPerClient: 512, headerTimeoutSeconds: 60, bodyIdleSeconds: 60 },
    loginLimits: { enabled: true, failuresPerUser: 5, failuresPerClient: 30, windowSeconds: 900, maxBackoffSeconds: 900, checksPerSecondPerUser: 1 },
  };
}
