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
  | { kind: 'section'; fields: Record<string, FieldSpec>; nullable?: boolean; secretFields?: boolean }
  /** A list of objects of one shape (access rules); `required` keys must be present in each. */
  | { kind: 'records'; fields: Record<string, FieldSpec>; required: readonly string[]; nullable?: boolean }
  /** An object whose keys are the operator's names (groups), every value of one shape. */
  | { kind: 'map'; value: FieldSpec };

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
  access: {
    kind: 'records',
    nullable: true,
    required: ['who', 'repositories', 'actions'],
    fields: {
      who: { kind: 'list', item: 'string', minItems: 1 },
      repositories: { kind: 'list', item: 'string', minItems: 1 },
      actions: { kind: 'list', item: { enum: ['pull', 'push', 'delete', '*'] } },
      comment: str(),
    },
  },
  groups: { kind: 'map', value: { kind: 'list', item: 'string' } },
  groupsFile: str(true),
  protectedTags: {
    kind: 'records',
    required: ['repositories', 'tags', 'who'],
    fields: {
      repositories: { kind: 'list', item: 'string', minItems: 1 },
      tags: { kind: 'list', item: 'string', minItems: 1 },
      who: { kind: 'list', item: 'string' },
      comment: str(),
    },
  },
  audit: { kind: 'section', fields: { file: str(true) } },
};
