/**
 * The effective configuration, after defaults, the file and REGGATE_* overrides.
 * Key names are the public contract of proxy.config.json (see SPEC.md / README).
 */

export type TlsMode = 'acme' | 'files' | 'self-signed' | 'off';
export type AuthMode = 'private' | 'read-public' | 'none';
export type ChallengeKind = 'token' | 'basic';
export type AcmeChallengeType = 'tls-alpn-01' | 'http-01';
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface AcmeConfig {
  domains: string[];
  email: string | null;
  /** Full directory URL; the shorthands "letsencrypt" and "letsencrypt-staging" are resolved at load time. */
  directoryUrl: string;
  challenges: AcmeChallengeType[];
  caFile: string | null;
  storageDir: string;
  renewBeforeDays: number;
  eab: { kid: string; hmacKey: string } | null;
}

export interface TlsConfig {
  mode: TlsMode;
  certFile: string | null;
  keyFile: string | null;
  names: string[];
  acme: AcmeConfig;
}

export interface AuthConfig {
  mode: AuthMode;
  challenge: ChallengeKind;
  realm: string;
  htpasswdFile: string;
  tokenTtlSeconds: number;
  publicCatalog: boolean;
  /** Override of the Bearer realm URL; null derives `<scheme>://<host>/token` from each request. */
  tokenRealm: string | null;
  /** Override of the token `service`; null uses the request's host. */
  tokenService: string | null;
}

export interface CacheConfig {
  /** How long manifests and blob HEADs are answered from memory; 0 turns the cache off. */
  ttlSeconds: number;
  maxMegabytes: number;
}

/** One access rule (see access/rules.ts for what a match means). */
export interface AccessRuleConfig {
  who: string[];
  repositories: string[];
  actions: string[];
  comment?: string;
}

export interface ProtectedTagConfig {
  repositories: string[];
  tags: string[];
  /** Who may still move or delete such a tag. */
  who: string[];
  comment?: string;
}

export interface Config {
  listen: string;
  httpListen: string | null;
  upstream: string;
  trustedProxies: string[];
  tls: TlsConfig;
  auth: AuthConfig;
  stateDir: string;
  blockUserAgents: string[];
  upstreamTimeoutSeconds: number;
  cache: CacheConfig;
  redis: string | null;
  log: { level: LogLevel };
  /** null: the rules of `auth.mode` (access/rules.ts, rulesForMode). */
  access: AccessRuleConfig[] | null;
  groups: Record<string, string[]>;
  groupsFile: string | null;
  protectedTags: ProtectedTagConfig[];
  /** `file` null: audit lines go to stdout with the access log. */
  audit: { file: string | null };
}
