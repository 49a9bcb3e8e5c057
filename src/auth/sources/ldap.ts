/**
 * A directory (OpenLDAP, Active Directory) as an identity source: bind as the service account,
 * find the user's entry by the configured filter, bind as that entry with the password given,
 * then read the user's groups. What an attacker controls — the name — only ever reaches the
 * directory escaped (RFC 4515), and only after the failed-login limits let the attempt through,
 * so a guesser cannot work through the directory's own lockout of a person.
 *
 * - An empty or blank password is refused before any bind: to LDAP it is an anonymous bind, and
 *   it succeeds (docker_auth once let any user in that way).
 * - A directory that does not answer, or answers with an error other than "invalid credentials",
 *   is `unavailable`: the chain stops (no other source may take the name) and nobody is counted.
 * - A few connections kept open (ldap-pool.ts, `poolSize`); a verified login is remembered by
 *   the chain for `cacheSeconds`, so a push's many requests cost one directory round.
 */
import { readFileSync } from 'node:fs';
import { Client, InvalidCredentialsError, type ClientOptions, type Entry } from 'ldapts';
import type { Config } from '../../config/types.js';
import type { Logger } from '../../observe/logger.js';
import type { Authentication, IdentitySource } from './source.js';
import { sourceName } from './validate.js';
import { LdapPool } from './ldap-pool.js';

export type LdapConfig = Extract<Config['auth']['sources'][number], { type: 'ldap' }>;

/** Longer than any real account name; longer ones never reach the directory. */
const MAX_USER_LENGTH = 256;
/** Groups read per level of nesting, at most (a person in more is a directory to look at). */
const MAX_GROUPS_PER_LEVEL = 200;

const INVALID = 'invalid username or password';

/** RFC 4515 escaping of a value placed in a search filter. */
export function escapeFilterValue(value: string): string {
  return value.replace(/[\\*()\0]/g, (ch) => `\\${ch.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** Active Directory's LDAP_MATCHING_RULE_IN_CHAIN: the server walks nested groups itself. */
export const IN_CHAIN_RULE = '1.2.840.113556.1.4.1941';

/**
 * How groups are searched: the filter (`{dn}` / `{username}` filled in later) and how many
 * levels of nesting the source follows itself. With `nestedGroupsInChain` Active Directory
 * answers every group the user is in, at any depth, in one search.
 */
export function groupQuery(config: Pick<LdapConfig, 'groupFilter' | 'nestedGroupsDepth' | 'nestedGroupsInChain'>): { filter: string; depth: number } {
  if (config.nestedGroupsInChain) return { filter: config.groupFilter ?? `(member:${IN_CHAIN_RULE}:={dn})`, depth: 0 };
  return { filter: config.groupFilter ?? '(member={dn})', depth: config.nestedGroupsDepth ?? 3 };
}

export class LdapSource implements IdentitySource {
  readonly name: string;
  readonly cacheMs: number;
  private readonly url: string;
  private readonly ca: string | undefined;
  private readonly bindPassword: string | null;
  private readonly userFilter: string;
  private readonly groupFilter: string;
  private readonly groupName: string;
  private readonly depth: number;
  private readonly timeoutMs: number;
  private readonly pool: LdapPool;
  /** Why the last round with the directory failed; null once one succeeds. */
  private outage: string | null = null;

  constructor(
    private readonly config: LdapConfig,
    private readonly logger: Logger,
  ) {
    this.name = sourceName(config);
    this.url = config.url;
    this.cacheMs = (config.cacheSeconds ?? 60) * 1000;
    this.ca = config.caFile ? readFileSync(config.caFile, 'utf8') : undefined;
    this.bindPassword = config.bindPassword ?? (config.bindPasswordFile ? readFileSync(config.bindPasswordFile, 'utf8').replace(/\r?\n$/, '') : null);
    this.userFilter = config.userFilter ?? '(uid={username})';
    const groups = groupQuery(config);
    this.groupFilter = groups.filter;
    this.groupName = config.groupName ?? 'cn';
    this.depth = groups.depth;
    this.timeoutMs = (config.timeoutSeconds ?? 5) * 1000;
    this.pool = new LdapPool(() => this.connect(), config.poolSize ?? 4);
  }

  async authenticate(user: string, password: string): Promise<Authentication> {
    if (password.trim() === '') return { ok: false, reason: 'invalid', message: INVALID };
    return this.round(user, password);
  }

  /** The entry and groups as the service account sees them (an access token's owner). */
  lookup(user: string): Promise<Authentication> {
    return this.round(user, null);
  }

  /** One round with the directory: find the entry, bind as it when `password` is given, read the groups. */
  private async round(user: string, password: string | null): Promise<Authentication> {
    if (user === '' || user.length > MAX_USER_LENGTH) return { ok: false, reason: 'unknown', message: INVALID };
    try {
      return this.answered(
        await this.pool.use(async (client): Promise<Authentication> => {
          await this.bindService(client);
          const entry = await this.findUser(client, user);
          if (entry === null) return { ok: false, reason: 'unknown', message: INVALID };
          if (entry === 'ambiguous') return { ok: false, reason: 'invalid', message: `more than one directory entry matches "${user}"; ask the directory's administrator` };
          if (password !== null) {
            try {
              await client.bind(entry.dn, password);
            } catch (err) {
              if (err instanceof InvalidCredentialsError) return { ok: false, reason: 'invalid', message: INVALID };
              throw err;
            }
            await this.bindService(client);
          }
          const groups = await this.groupsOf(client, entry, user);
          return { ok: true, identity: { subject: user, source: this.name, groups, stamp: null, entry: entry.dn } };
        }),
      );
    } catch (err) {
      const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      if (this.outage === null) this.logger.warn({ source: this.name }, `identity source "${this.name}": the directory ${this.url} does not answer (${why}); its users cannot log in anew, logins it verified lately still work`);
      this.outage = `the directory ${this.url} does not answer (${why})`;
      // The directory's address is for the operator (log, /readyz from this host), not for callers.
      return { ok: false, reason: 'unavailable', message: `identity source "${this.name}" (the directory) cannot answer now; try again in a moment` };
    }
  }

  /** Tokens from the directory are not re-checked: their lifetime (auth.tokenTtlSeconds) bounds them. */
  currentStamp(): undefined {
    return undefined;
  }

  degraded(): string[] {
    return this.outage ? [`identity source "${this.name}": ${this.outage}`] : [];
  }

  close(): Promise<void> {
    return this.pool.close();
  }

  private answered(answer: Authentication): Authentication {
    if (this.outage !== null) this.logger.info({ source: this.name }, `identity source "${this.name}": the directory answers again`);
    this.outage = null;
    return answer;
  }

  private async connect(): Promise<Client> {
    const tlsOptions = this.ca ? { ca: [this.ca] } : {};
    const options: ClientOptions = { url: this.url, timeout: this.timeoutMs, connectTimeout: this.timeoutMs, strictDN: false };
    if (this.url.startsWith('ldaps:')) options.tlsOptions = tlsOptions;
    const client = new Client(options);
    if (this.config.startTls) await client.startTLS(tlsOptions);
    return client;
  }

  private async bindService(client: Client): Promise<void> {
    if (this.config.bindDn) await client.bind(this.config.bindDn, this.bindPassword ?? '');
  }

  private async findUser(client: Client, user: string): Promise<Entry | 'ambiguous' | null> {
    const filter = this.userFilter.replaceAll('{username}', escapeFilterValue(user));
    const { searchEntries } = await client.search(this.config.userBase, { scope: 'sub', filter, attributes: ['memberOf'], sizeLimit: 2 });
    if (searchEntries.length > 1) return 'ambiguous';
    return searchEntries[0] ?? null;
  }

  /**
   * By search under groupBase (member, uniqueMember, memberUid: the filter says which), nested
   * groups followed `nestedGroupsDepth` levels; without groupBase, from the entry's memberOf.
   * Names are the `groupName` attribute (or a memberOf DN's first value).
   */
  private async groupsOf(client: Client, entry: Entry, user: string): Promise<string[]> {
    const base = this.config.groupBase ?? null;
    if (base === null) {
      const memberOf = entry.memberOf;
      const dns = Array.isArray(memberOf) ? memberOf : memberOf ? [memberOf] : [];
      return dns.map((dn) => firstValueOf(String(dn))).filter((name): name is string => name !== null);
    }
    const names = new Set<string>();
    const seen = new Set<string>();
    let members = [entry.dn];
    for (let level = 0; level <= this.depth && members.length > 0; level++) {
      const found: string[] = [];
      for (const dn of members.slice(0, MAX_GROUPS_PER_LEVEL)) {
        const filter = this.groupFilter.replaceAll('{dn}', escapeFilterValue(dn)).replaceAll('{username}', escapeFilterValue(user));
        const { searchEntries } = await client.search(base, { scope: 'sub', filter, attributes: [this.groupName] });
        for (const group of searchEntries) {
          if (seen.has(group.dn)) continue;
          seen.add(group.dn);
          found.push(group.dn);
          const value = group[this.groupName];
          const name = Array.isArray(value) ? value[0] : value;
          if (name !== undefined) names.add(String(name));
        }
      }
      members = found;
    }
    return [...names].sort();
  }
}

/** "cn=team-a,ou=groups,dc=example" → "team-a". */
function firstValueOf(dn: string): string | null {
  const match = /^[^=,]+=((?:\\.|[^,\\])+)/.exec(dn);
  return match ? match[1]!.replace(/\\(.)/g, '$1') : null;
}
