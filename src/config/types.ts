/**
 * The effective configuration, after defaults, the file and REGGATE_* overrides — derived from
 * the one description of its shape in schema.ts. Key names are the public contract of
 * proxy.config.json (see SPEC.md / docs/configuration.md); what each key means is documented there.
 *
 * After loading: paths are absolute, `tls.acme.directoryUrl` is a full URL (the "letsencrypt"
 * shorthands resolved) and `tls.acme.storageDir` is set (it follows `stateDir` unless given).
 */
import type { configSchema, Infer } from './schema.js';

export type Config = Infer<{ kind: 'section'; fields: typeof configSchema }>;

export type TlsConfig = Config['tls'];
export type AcmeConfig = TlsConfig['acme'];
export type AuthConfig = Config['auth'];
export type CacheConfig = Config['cache'];

export type TlsMode = TlsConfig['mode'];
export type AuthMode = AuthConfig['mode'];
export type ChallengeKind = AuthConfig['challenge'];
export type AcmeChallengeType = AcmeConfig['challenges'][number];
export type LogLevel = Config['log']['level'];

/** One access rule; null `access` means the rules of `auth.mode` (access/rules.ts, rulesForMode). */
export type AccessRuleConfig = NonNullable<Config['access']>[number];
/** `who` lists those who may still move or delete such a tag. */
export type ProtectedTagConfig = Config['protectedTags'][number];
