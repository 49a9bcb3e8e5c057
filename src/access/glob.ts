/**
 * Repository and tag patterns of the access rules: `*` stands for any run of characters within one
 * path component, `**` for any run including `/`, `${user}` for the caller's user name as one
 * component. Everything else is literal. Patterns come from the operator; names come from the
 * network, so a pattern compiles to one anchored regular expression whose wildcards are limited
 * in number (a name is at most 255 characters: matching stays polynomial and short).
 */

export const USER_PLACEHOLDER = '${user}';
export const MAX_WILDCARDS = 8;

export interface Glob {
  source: string;
  /** The first path component when it is plain text (for the rule index), else null. */
  literalHead: string | null;
  /** The pattern starts with `${user}/` or is `${user}`: it can only match names whose head is the caller. */
  userHead: boolean;
  /** `**`: every name. */
  matchesAll: boolean;
  /** `user` is null for anonymous callers: a pattern with `${user}` matches nothing for them. */
  matches(name: string, user: string | null): boolean;
}

/** Why a pattern cannot be used, or null. */
export function globProblem(pattern: string, allowSlash: boolean): string | null {
  if (pattern === '') return 'is empty';
  if (pattern.length > 255) return 'is longer than 255 characters';
  const rest = pattern.split(USER_PLACEHOLDER).join('');
  if (rest.includes('$')) return 'uses "$" other than in ${user}';
  if (!allowSlash && pattern.includes('/')) return 'must not contain "/" (tags have no path)';
  if (/[^A-Za-z0-9._\-/*:]/.test(rest)) return 'may only contain letters, digits, ".", "_", "-", "/", "*" and ${user}';
  if (/\*{3,}/.test(pattern)) return 'has "***"; use "*" (one component) or "**" (any depth)';
  const wildcards = (pattern.match(/\*\*?/g) ?? []).length + pattern.split(USER_PLACEHOLDER).length - 1;
  if (wildcards > MAX_WILDCARDS) return `has more than ${MAX_WILDCARDS} wildcards`;
  return null;
}

export function compileGlob(pattern: string): Glob {
  let source = '';
  let users = 0;
  for (let i = 0; i < pattern.length; ) {
    if (pattern.startsWith(USER_PLACEHOLDER, i)) {
      source += '([^/]+)';
      users++;
      i += USER_PLACEHOLDER.length;
    } else if (pattern.startsWith('**', i)) {
      source += '.*';
      i += 2;
    } else if (pattern[i] === '*') {
      source += '[^/]*';
      i += 1;
    } else {
      source += pattern[i]!.replace(/[.\\+?^$()[\]{}|-]/g, '\\$&');
      i += 1;
    }
  }
  const regex = new RegExp(`^${source}$`);
  const head = pattern.split('/')[0]!;
  return {
    source: pattern,
    literalHead: /[*$]/.test(head) ? null : head,
    userHead: head === USER_PLACEHOLDER,
    matchesAll: pattern === '**',
    matches(name, user) {
      if (users === 0) return regex.test(name);
      if (user === null) return false;
      const m = regex.exec(name);
      if (!m) return false;
      for (let g = 1; g <= users; g++) if (m[g] !== user) return false;
      return true;
    },
  };
}
