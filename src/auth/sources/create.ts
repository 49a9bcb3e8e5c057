/**
 * The configured identity sources, in order. `auth.sources` empty is the shorthand of before:
 * the htpasswd file of `auth.htpasswdFile` alone. Adding a kind of source touches this folder and
 * the schema only.
 */
import type { Config } from '../../config/types.js';
import type { Logger } from '../../observe/logger.js';
import { UserStore, type PasswordChecker } from '../users.js';
import { HtpasswdSource } from './htpasswd.js';
import { LdapSource } from './ldap.js';
import type { IdentitySource } from './source.js';

export interface SourceDeps {
  logger: Logger;
  pool: PasswordChecker;
  selfCommand?: string;
}

export async function createSources(auth: Config['auth'], deps: SourceDeps): Promise<IdentitySource[]> {
  const configured = auth.sources.length ? auth.sources : [{ type: 'htpasswd' as const, file: auth.htpasswdFile }];
  const sources: IdentitySource[] = [];
  for (const source of configured) {
    if (source.type === 'htpasswd') {
      const store = await UserStore.open(source.file, { logger: deps.logger, pool: deps.pool, ...(deps.selfCommand ? { selfCommand: deps.selfCommand } : {}) });
      sources.push(new HtpasswdSource(store, undefined, source.name));
    } else {
      sources.push(new LdapSource(source, deps.logger));
    }
  }
  return sources;
}
