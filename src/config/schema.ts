/**
 * The shape of proxy.config.json as data: one table drives validation of the file, parsing of
 * REGGATE_* environment overrides, masking in `config check` and — through `Infer` — the
 * TypeScript types of the effective config (types.ts), so none of them can drift apart.
 */
import type { ClaimCondition } from '../access/claims.js';

export type FieldSpec =
  | { kind: 'string'; nullable?: boolean; secret?: boolean; file?: FileRole }
  | { kind: 'number'; integer?: boolean; min: number; max: number }
  | { kind: 'boolean' }
  | { kind: 'enum'; values: readonly string[] }
  | { kind: 'list'; item: 'string' | { enum: readonly string[] }; minItems?: number }
  | { kind: 'section'; fields: Record<string, FieldSpec>; nullable?: boolean; secretFields?: boolean }
  /** A list of objects of one shape (access rules); `required` keys must be present in each. */
  | { kind: 'records'; fields: Record<string, FieldSpec>; required: readonly string[]; nullable?: boolean }
  /** An object whose keys are the operator's names (groups), every value of one shape. */
  | { kind: 'map'; value: FieldSpec }
  /** A list of objects of several shapes, told apart by their `type` (identity sources). */
  | { kind: 'variants'; variants: Record<string, Variant> }
  /** Conditions on an ID token's claims: claim path → text, number, true/false, or a list of them (access/claims.ts). */
  | { kind: 'conditions' };

/**
 * A key that names a file or directory. Relative paths resolve against the config file's
 * directory, and `config check` (and `serve`, before it starts) checks each as the user running
 * it — both walk the schema for these marks (config/file-keys.ts), so a new key is covered by
 * marking it here.
 */
export interface FileRole {
  /** read: a file the proxy reads; append: one it appends to; dir: a directory it creates and writes. */
  use: 'read' | 'append' | 'dir';
  /** What it should be, for the fix in a message: "the PEM certificate chain". */
  what: string;
  /** Only then is it used, and checked: tls.mode "files" or "acme", auth on, the htpasswd shorthand (no auth.sources), `redis` set. */
  when?: 'tls-files' | 'tls-acme' | 'auth' | 'htpasswd-shorthand' | 'redis';
  /** A missing file is a warning, not an error, with this consequence (", so nobody can log in"). */
  ifMissing?: string;
  /** What an unreadable one means, after its problem ("so nobody could log in"). */
  ifUnreadable?: string;
  /** An htpasswd file: messages name the command that adds a user to it. */
  users?: true;
}

const file = <N extends boolean = false>(role: FileRole, nullable?: N) => ({ kind: 'string', nullable: (nullable ?? false) as N, file: role }) as const;

export interface Variant {
  fields: Record<string, FieldSpec>;
  required: readonly string[];
}

const str = <N extends boolean = false>(nullable?: N) => ({ kind: 'string', nullable: (nullable ?? false) as N }) as const;

/** The value a spec describes, once defaults are applied (every section key present). */
export type Infer<S> = S extends { kind: 'string'; nullable: true }
  ? string | null
  : S extends { kind: 'string' }
    ? string
    : S extends { kind: 'number' }
      ? number
      : S extends { kind: 'boolean' }
        ? boolean
        : S extends { kind: 'enum'; values: readonly (infer V)[] }
          ? V
          : S extends { kind: 'list'; item: { enum: readonly (infer V)[] } }
            ? V[]
            : S extends { kind: 'list' }
              ? string[]
              : S extends { kind: 'section'; fields: infer F }
                ? NullableIf<S, { -readonly [K in keyof F]: Infer<F[K]> }>
                : S extends { kind: 'records'; fields: infer F; required: readonly (infer R)[] }
                  ? NullableIf<S, InferRecord<F, R>[]>
                  : S extends { kind: 'map'; value: infer V }
                    ? Record<string, Infer<V>>
                    : S extends { kind: 'conditions' }
                      ? Record<string, ClaimCondition>
                    : S extends { kind: 'variants'; variants: infer V }
                      ? { [K in keyof V]: { type: K } & (V[K] extends { fields: infer F; required: readonly (infer R)[] } ? InferRecord<F, R> : never) }[keyof V][]
                      : never;

type NullableIf<S, T> = S extends { nullable: true } ? T | null : T;

/** A record's required keys are always there; the others only when the operator wrote them. */
type InferRecord<F, R> = { -readonly [K in keyof F as K extends R ? K : never]: Infer<F[K]> } & {
  -readonly [K in keyof F as K extends R ? never : K]?: Infer<F[K]>;
};

export const configSchema = {
  listen: str(),
  httpListen: str(true),
  upstream: str(),
  trustedProxies: { kind: 'list', item: 'string' },
  tls: {
    kind: 'section',
    fields: {
      mode: { kind: 'enum', values: ['acme', 'files', 'self-signed', 'off'] },
      certFile: file({ use: 'read', what: 'the PEM certificate chain (or use tls.mode "self-signed")', when: 'tls-files' }, true),
      keyFile: file({ use: 'read', what: "the certificate's PEM private key", when: 'tls-files' }, true),
      names: { kind: 'list', item: 'string' },
      selfSignedKey: { kind: 'enum', values: ['ecdsa-p256', 'rsa-2048'] },
      acme: {
        kind: 'section',
        fields: {
          domains: { kind: 'list', item: 'string' },
          email: str(true),
          directoryUrl: str(),
          challenges: { kind: 'list', item: { enum: ['tls-alpn-01', 'http-01'] }, minItems: 1 },
          caFile: file({ use: 'read', what: "the ACME server's CA certificate (PEM), or set it to null", when: 'tls-acme' }, true),
          storageDir: file({ use: 'dir', what: 'a directory the proxy may create and write', when: 'tls-acme' }),
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
      htpasswdFile: file({ use: 'read', what: 'an htpasswd file', when: 'htpasswd-shorthand', ifMissing: ', so nobody can log in', ifUnreadable: 'so nobody could log in', users: true }),
      tokenTtlSeconds: { kind: 'number', integer: true, min: 10, max: 86400 },
      /** docker login's stored identity token; 0: none handed out (auth/refresh-tokens.ts). */
      refreshTokenDays: { kind: 'number', integer: true, min: 0, max: 365 },
      publicCatalog: { kind: 'boolean' },
      tokenRealm: str(true),
      tokenService: str(true),
      /** Empty: the htpasswdFile alone (the shorthand); see auth/sources/create.ts. */
      sources: {
        kind: 'variants',
        variants: {
          htpasswd: { required: ['file'], fields: { file: file({ use: 'read', what: 'an htpasswd file', when: 'auth', ifMissing: ', so nobody in it can log in', ifUnreadable: 'so nobody in it could log in', users: true }), name: str() } },
          ldap: {
            required: ['url', 'userBase'],
            fields: {
              name: str(),
              url: str(),
              startTls: { kind: 'boolean' },
              caFile: file({ use: 'read', what: "the directory's CA certificate (PEM)", when: 'auth' }, true),
              bindDn: str(true),
              bindPasswordFile: file({ use: 'read', what: "a file holding the service account's password", when: 'auth' }, true),
              bindPassword: { kind: 'string', nullable: true, secret: true },
              userBase: str(),
              userFilter: str(),
              groupBase: str(true),
              groupFilter: str(),
              groupName: str(),
              nestedGroupsDepth: { kind: 'number', integer: true, min: 0, max: 10 },
              nestedGroupsInChain: { kind: 'boolean' },
              cacheSeconds: { kind: 'number', integer: true, min: 0, max: 3600 },
              timeoutSeconds: { kind: 'number', min: 1, max: 60 },
              poolSize: { kind: 'number', integer: true, min: 1, max: 32 },
              comment: str(),
            },
          },
          oidc: {
            required: ['name', 'issuer', 'audience'],
            fields: {
              name: str(),
              issuer: str(),
              audience: { kind: 'list', item: 'string', minItems: 1 },
              jwksUrl: str(true),
              caFile: file({ use: 'read', what: "the issuer's CA certificate (PEM), or set it to null", when: 'auth' }, true),
              algorithms: { kind: 'list', item: { enum: ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] }, minItems: 1 },
              clockSkewSeconds: { kind: 'number', integer: true, min: 0, max: 300 },
              require: { kind: 'conditions' },
              subject: str(),
              groups: { kind: 'list', item: 'string' },
              maxJobMinutes: { kind: 'number', integer: true, min: 1, max: 10080 },
              comment: str(),
            },
          },
          tokens: {
            required: [],
            fields: {
              name: str(),
              maxDays: { kind: 'number', integer: true, min: 1, max: 3650 },
              adminGroup: str(true),
              comment: str(),
            },
          },
        },
      },
    },
  },
  stateDir: file({ use: 'dir', what: 'a directory the proxy may create and write, e.g. ./data' }),
  blockUserAgents: { kind: 'list', item: 'string' },
  upstreamTimeoutSeconds: { kind: 'number', min: 1, max: 86400 },
  drainSeconds: { kind: 'number', integer: true, min: 0, max: 86400 },
  cache: {
    kind: 'section',
    fields: {
      ttlSeconds: { kind: 'number', min: 0, max: 300 },
      maxMegabytes: { kind: 'number', integer: true, min: 1, max: 4096 },
    },
  },
  redis: { kind: 'string', nullable: true, secret: true },
  redisOptions: {
    kind: 'section',
    fields: {
      sentinels: { kind: 'list', item: 'string' },
      sentinelPassword: { kind: 'string', nullable: true, secret: true },
      caFile: file({ use: 'read', what: "the CA certificate (PEM) of Redis's TLS, or set it to null", when: 'redis' }, true),
      secretKeyFile: file({ use: 'read', what: 'a file holding the secret key (openssl rand -base64 32)', when: 'redis' }, true),
      secretKey: { kind: 'string', nullable: true, secret: true },
    },
  },
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
      claims: { kind: 'conditions' },
      comment: str(),
    },
  },
  groups: { kind: 'map', value: { kind: 'list', item: 'string' } },
  groupsFile: file({ use: 'read', what: 'an htgroup file', ifMissing: '; only the groups in "groups" apply until it is created' }, true),
  protectedTags: {
    kind: 'records',
    required: ['repositories', 'tags', 'who'],
    fields: {
      repositories: { kind: 'list', item: 'string', minItems: 1 },
      tags: { kind: 'list', item: 'string', minItems: 1 },
      who: { kind: 'list', item: 'string' },
      claims: { kind: 'conditions' },
      comment: str(),
    },
  },
  audit: { kind: 'section', fields: { file: file({ use: 'append', what: 'a file in a directory the proxy may write, or null for stdout' }, true) } },
  cors: { kind: 'section', fields: { allowedOrigins: { kind: 'list', item: 'string' } } },
  metrics: { kind: 'section', fields: { listen: str(true) } },
  loginLimits: {
    kind: 'section',
    fields: {
      enabled: { kind: 'boolean' },
      failuresPerUser: { kind: 'number', integer: true, min: 1, max: 1000 },
      failuresPerClient: { kind: 'number', integer: true, min: 1, max: 100000 },
      windowSeconds: { kind: 'number', integer: true, min: 10, max: 86400 },
      maxBackoffSeconds: { kind: 'number', integer: true, min: 1, max: 86400 },
      checksPerSecondPerUser: { kind: 'number', integer: true, min: 1, max: 1000 },
    },
  },
  limits: {
    kind: 'section',
    fields: {
      maxConnections: { kind: 'number', integer: true, min: 1, max: 1_000_000 },
      maxConnectionsPerClient: { kind: 'number', integer: true, min: 1, max: 1_000_000 },
      headerTimeoutSeconds: { kind: 'number', integer: true, min: 1, max: 3600 },
      bodyIdleSeconds: { kind: 'number', integer: true, min: 1, max: 86400 },
    },
  },
} as const satisfies Record<string, FieldSpec>;
