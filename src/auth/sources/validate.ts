/** What the schema cannot say about `auth.sources`: names, URLs and filters that fit together. */
import { templateProblem } from '../../access/claims.js';
import type { Config } from '../../config/types.js';

type SourceConfig = Config['auth']['sources'][number];

export function sourceName(source: SourceConfig): string {
  return source.name ?? source.type;
}

export function sourceProblems(sources: readonly SourceConfig[]): string[] {
  const problems: string[] = [];
  const seen = new Map<string, number>();
  sources.forEach((source, i) => {
    const at = `auth.sources[${i}]`;
    const name = sourceName(source);
    // Tokens name the source that verified their subject; two of one name could not be told apart.
    const earlier = seen.get(name);
    if (earlier !== undefined) problems.push(`${at}.name: "${name}" is also auth.sources[${earlier}]'s name; give each source its own "name"`);
    seen.set(name, i);
    if (!/^[a-z][a-z0-9-]{0,31}$/.test(name)) problems.push(`${at}.name: "${name}" must be lower-case letters, digits and "-" (it appears in tokens and audit lines)`);
    if (source.type === 'tokens') {
      const first = sources.findIndex((s) => s.type === 'tokens');
      if (first !== i) problems.push(`${at}: access tokens are already auth.sources[${first}]; list "tokens" once`);
      if (sources.every((s) => s.type === 'tokens' || s.type === 'oidc')) problems.push(`${at}: access tokens act for their owners, who come from another source; list an htpasswd or ldap source too`);
      if (source.adminGroup !== undefined && source.adminGroup !== null && !/^[^\s:]+$/.test(source.adminGroup)) problems.push(`${at}.adminGroup: "${source.adminGroup}" is a group name (no spaces or colons)`);
    }
    if (source.type === 'oidc') {
      problems.push(...oidcProblems(source, at));
      return;
    }
    if (source.type !== 'ldap') return;
    let url: URL | null = null;
    try {
      url = new URL(source.url);
    } catch {
      problems.push(`${at}.url: "${source.url}" is not a URL (expected ldaps://host or ldap://host)`);
    }
    if (url && url.protocol !== 'ldap:' && url.protocol !== 'ldaps:') problems.push(`${at}.url: scheme must be ldaps: or ldap:, got "${url.protocol}"`);
    if (source.startTls && url?.protocol === 'ldaps:') problems.push(`${at}.startTls: only with an ldap:// URL (ldaps:// is TLS from the start)`);
    if (url?.protocol === 'ldap:' && !source.startTls) {
      problems.push(`${at}.url: ldap:// without startTls sends passwords in clear; use ldaps:// or set "startTls": true`);
    }
    if (source.userFilter !== undefined && !source.userFilter.includes('{username}')) problems.push(`${at}.userFilter: must contain {username}, e.g. "(uid={username})"`);
    if (source.nestedGroupsInChain && (source.groupBase ?? null) === null) problems.push(`${at}.nestedGroupsInChain: needs groupBase (the groups are searched there, by Active Directory's in-chain rule)`);
    if (source.nestedGroupsInChain && source.nestedGroupsDepth !== undefined) problems.push(`${at}.nestedGroupsDepth: with nestedGroupsInChain the directory follows nesting itself; remove nestedGroupsDepth`);
    if (source.groupFilter !== undefined && !/\{(dn|username)\}/.test(source.groupFilter)) problems.push(`${at}.groupFilter: must contain {dn} or {username}, e.g. "(member={dn})"`);
    const hasPassword = (source.bindPassword ?? null) !== null || (source.bindPasswordFile ?? null) !== null;
    if ((source.bindPassword ?? null) !== null && (source.bindPasswordFile ?? null) !== null) problems.push(`${at}.bindPassword: set either bindPassword or bindPasswordFile, not both`);
    if ((source.bindDn ?? null) !== null && !hasPassword) problems.push(`${at}.bindPasswordFile: bindDn needs a password (bindPasswordFile, or bindPassword from the environment)`);
    if ((source.bindDn ?? null) === null && hasPassword) problems.push(`${at}.bindDn: a bind password without bindDn; set bindDn`);
  });
  return problems;
}

function oidcProblems(source: Extract<SourceConfig, { type: 'oidc' }>, at: string): string[] {
  const problems: string[] = [];
  const https = (value: string, key: string): void => {
    let url: URL | null = null;
    try {
      url = new URL(value);
    } catch {
      problems.push(`${at}.${key}: "${value}" is not a URL (expected https://…, e.g. https://token.actions.githubusercontent.com)`);
      return;
    }
    if (url.protocol !== 'https:') problems.push(`${at}.${key}: "${value}" must be https:// (keys fetched in clear could be replaced on the way)`);
    if (url.search || url.hash) problems.push(`${at}.${key}: "${value}" has a query or fragment; give the issuer's URL exactly as its tokens' "iss" says`);
  };
  https(source.issuer, 'issuer');
  if (source.jwksUrl) https(source.jwksUrl, 'jwksUrl');
  source.audience.forEach((aud, i) => {
    if (aud.trim() === '') problems.push(`${at}.audience[${i}]: empty; give the audience your CI jobs ask for, e.g. your registry's URL`);
  });
  const subject = source.subject ?? '${sub}';
  const subjectProblem = templateProblem(subject);
  if (subjectProblem) problems.push(`${at}.subject: "${subject}" ${subjectProblem}`);
  else if (!subject.includes('${')) problems.push(`${at}.subject: "${subject}" names no claim, so every job would be one identity; use e.g. "\${repository}" or "\${sub}"`);
  (source.groups ?? []).forEach((group, i) => {
    const problem = templateProblem(group);
    if (problem) problems.push(`${at}.groups[${i}]: "${group}" ${problem}`);
  });
  return problems;
}
