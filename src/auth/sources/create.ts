/**
 * The configured identity sources, in order. `auth.sources` empty is the shorthand of before:
 * the htpasswd file of `auth.htpasswdFile` alone. Adding a kind of source touches this folder and
 * the schema only.
 */
import { readFileSync } from 'node:fs';
import type { Config } from '../../config/types.js';
import type { Logger } from '../../observe/logger.js';
import type { RedisHealth, RedisTarget } from '../../state/redis-client.js';
import { openTokenStore } from '../access-tokens/store.js';
import { UserStore, type PasswordChecker } from '../users.js';
import { HtpasswdSource } from './htpasswd.js';
import type { Authentication, IdentitySource } from './source.js';
import { TokensSource } from './tokens.js';

export interface SourceDeps {
  logger: Logger;
  pool: PasswordChecker;
  selfCommand?: string;
  /** Where access tokens are shared between replicas; null: in stateDir. */
  redis: RedisTarget | null;
  health?: RedisHealth;
  /** Follow changes to files and stores while running (the proxy); the CLI reads once. */
  follow: boolean;
}

export async function createSources(config: Pick<Config, 'auth' | 'stateDir'>, deps: SourceDeps): Promise<IdentitySource[]> {
  const { auth } = config;
  const configured = auth.sources.length ? auth.sources : [{ type: 'htpasswd' as const, file: auth.htpasswdFile }];
  const sources: IdentitySource[] = [];
  const people: IdentitySource[] = [];
  for (const source of configured) {
    if (source.type === 'htpasswd') {
      const store = await UserStore.open(source.file, { logger: deps.logger, pool: deps.pool, ...(deps.selfCommand ? { selfCommand: deps.selfCommand } : {}) });
      people.push(new HtpasswdSource(store, undefined, source.name));
      sources.push(people.at(-1)!);
    } else if (source.type === 'ldap') {
      // ldapts and jose are loaded only for the sources that need them: every module the proxy
      // loads stays in its resident memory.
      const { LdapSource } = await import('./ldap.js');
      people.push(new LdapSource(source, deps.logger));
      sources.push(people.at(-1)!);
    } else if (source.type === 'oidc') {
      const { OidcSource } = await import('./oidc.js');
      const oidc = new OidcSource(source, { logger: deps.logger, ca: source.caFile ? readFileSync(source.caFile, 'utf8') : null });
      if (deps.follow) oidc.start();
      sources.push(oidc);
    } else {
      const store = await openTokenStore(config.stateDir, deps.redis, { logger: deps.logger, follow: deps.follow, ...(deps.health ? { health: deps.health } : {}) });
      sources.push(new TokensSource(source, store, (owner) => findOwner(people, owner), (owner) => people.every((s) => s.currentStamp(owner) === null)));
    }
  }
  return sources;
}

/** The first source that holds `owner` decides; one that cannot answer ends the search (as in the chain). */
async function findOwner(people: readonly IdentitySource[], owner: string): Promise<Authentication> {
  for (const source of people) {
    const found = await source.lookup(owner);
    if (found.ok || found.reason !== 'unknown') return found;
  }
  return { ok: false, reason: 'unknown', message: `no identity source knows "${owner}"` };
}
