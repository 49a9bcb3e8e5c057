/**
 * The shape of proxy.config.json as data: one table drives validation of the file, parsing of
 * REGGATE_* environment overrides and masking in `config check`, so the three cannot drift apart.
 */

export type FieldSpec =
  | { kind: 'string'; nullable?: boolean; secret?: boolean }
  | { kind: 'number'; integer?: boolean; min: number; max: number }
  | { kind: 'boolean' }
  | { kind: 'enum'; values: readonly string[] }
  | { kind: 'list'; item: 'string' | { enum: readonly string[] }; minItems?: number }
  | { kind: 'section'; fields: Record<string, FieldSpec>; nullable?: boolean; secretFields?: boolean };

const str = (nullable = false): FieldSpec => ({ kind: 'string', nullable });

export const configSchema: Record<string, FieldSpec> = {
  listen: str(),
  httpListen: str(true),
  upstream: str(),
  trustedProxies: { kind: 'list', item: 'string' },
  tls: {
    kind: 'section',
    fields: {
      mode: { kind: 'enum', values: ['acme', 'files', 'self-signed', 'off'] },
      certFile: str(true),
      keyFile: str(true),
      names: { kind: 'list', item: 'string' },
      acme: {
        kind: 'section',
        fields: {
          domains: { kind: 'list', item: 'string' },
          email: str(true),
          directoryUrl: str(),
          challenges: { kind: 'list', item: { enum: ['tls-alpn-01', 'http-01'] }, minItems: 1 },
          caFile: str(true),
          storageDir: str(),
          renewBeforeDays: { kind: 'number', min: 1, max: 90 },
          eab: {
            kind: 'section',
            nullable: true,
            fields: { kid: str(), hmacKey: { kind: 'string', secret: true } },
          },
        },
      },
    },
  },
  auth: {
    kind: 'section',
    fields: {
      mode: { kind: 'enum', values: ['private', 'read-public', 'none'] },
      challenge: { kind: 'enum', values: ['token', 'basic'] },
      realm: str(),
      htpasswdFile: str(),
      tokenTtlSeconds: { kind: 'number', integer: true, min: 10, max: 86400 },
      publicCatalog: { kind: 'boolean' },
      tokenRealm: str(true),
      tokenService: str(true),
    },
  },
  stateDir: str(),
  blockUserAgents: { kind: 'list', item: 'string' },
  upstreamTimeoutSeconds: { kind: 'number', min: 1, max: 86400 },
  cache: {
    kind: 'section',
    fields: {
      ttlSeconds: { kind: 'number', min: 0, max: 300 },
      maxMegabytes: { kind: 'number', integer: true, min: 1, max: 4096 },
    },
  },
  redis: { kind: 'string', nullable: true, secret: true },
  log: {
    kind: 'section',
    fields: { level: { kind: 'enum', values: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] } },
  },
};
