/**
 * Repository and tag patterns of the access rules: `*` stands for any run of characters within one
 * path component, `**` for any run including `/`, `${user}` for the caller's user name as one
 * component, `${claims.NAME}` for a claim of the caller's ID token (lower-cased: repository names
 * are, and issuers' are often not — GitHub's `Acme/App`). Everything else is literal. Patterns come from the operator, names from the network:
 * a pattern with up to two wildcards is one anchored regular expression (at most quadratic in a
 * 255-character name); one with more is matched by a state-set walk that is linear in the name,
 * since `**a**a**a**b` as a backtracking regex takes hours on "aaaa…".
 */

import { claimAt, type Claims } from './claims.js';

export const USER_PLACEHOLDER = '${user}';
export const MAX_WILDCARDS = 8;
const PLACEHOLDER = /\$\{(user|claims\.[A-Za-z0-9_.:-]+)\}/g;

/** What placeholders stand for: the caller's name and, for an OIDC caller, its claims. */
export interface Placeholders {
  user: string | null;
  claims?: Claims | undefined;
}

export interface Glob {
  source: string;
  /** The first path component when it is plain text (for the rule index), else null. */
  literalHead: string | null;
  /** The pattern starts with `${user}/` or is `${user}`: it can only match names whose head is the caller. */
  userHead: boolean;
  /** `**`: every name. */
  matchesAll: boolean;
  /** The claims its placeholders read. */
  claimPaths: string[];
  /** A pattern with a placeholder that has no value for the caller (anonymous, no such claim) matches nothing. */
  matches(name: string, who: Placeholders): boolean;
}

/** Why a pattern cannot be used, or null. */
export function globProblem(pattern: string, allowSlash: boolean): string | null {
  if (pattern === '') return 'is empty';
  if (pattern.length > 255) return 'is longer than 255 characters';
  const rest = pattern.replace(PLACEHOLDER, '');
  if (rest.includes('$')) return 'uses "$" other than in ${user} or ${claims.NAME}';
  if (!allowSlash && pattern.includes('/')) return 'must not contain "/" (tags have no path)';
  if (/[^A-Za-z0-9._\-/*:]/.test(rest)) return 'may only contain letters, digits, ".", "_", "-", "/", "*", ${user} and ${claims.NAME}';
  if (/\*{3,}/.test(pattern)) return 'has "***"; use "*" (one component) or "**" (any depth)';
  const wildcards = (pattern.match(/\*\*?/g) ?? []).length + (pattern.match(PLACEHOLDER) ?? []).length;
  if (wildcards > MAX_WILDCARDS) return `has more than ${MAX_WILDCARDS} wildcards`;
  return null;
}

type Token = { kind: 'char'; char: string } | { kind: 'star' } | { kind: 'any' } | { kind: 'var'; name: string };

export function compileGlob(pattern: string): Glob {
  const head = pattern.split('/')[0]!;
  const tokens = tokenize(pattern);
  const wildcards = tokens.filter((t) => t.kind !== 'char').length;
  const shared = {
    source: pattern,
    literalHead: /[*$]/.test(head) ? null : head,
    userHead: head === USER_PLACEHOLDER,
    matchesAll: pattern === '**',
    claimPaths: tokens.flatMap((t) => (t.kind === 'var' && t.name.startsWith('claims.') ? [t.name.slice('claims.'.length)] : [])),
  };
  if (wildcards > 2) return { ...shared, matches: (name, who) => walk(tokens, name, who) };
  return { ...shared, matches: regexMatcher(tokens) };
}

function tokenize(pattern: string): Token[] {
  const tokens: Token[] = [];
  for (let i = 0; i < pattern.length; ) {
    PLACEHOLDER.lastIndex = i;
    const placeholder = pattern[i] === '$' ? PLACEHOLDER.exec(pattern) : null;
    if (placeholder && placeholder.index === i) {
      tokens.push({ kind: 'var', name: placeholder[1]! });
      i += placeholder[0].length;
    } else if (pattern.startsWith('**', i)) {
      tokens.push({ kind: 'any' });
      i += 2;
    } else if (pattern[i] === '*') {
      tokens.push({ kind: 'star' });
      i += 1;
    } else {
      tokens.push({ kind: 'char', char: pattern[i]! });
      i += 1;
    }
  }
  return tokens;
}

/** What a placeholder stands for, or null when it has no usable value (then nothing matches). */
function valueOf(name: string, who: Placeholders): string | null {
  if (name === 'user') return who.user === null || who.user === '' || who.user.includes('/') ? null : who.user;
  if (!who.claims) return null;
  const value = claimAt(who.claims, name.slice('claims.'.length));
  const text = typeof value === 'string' || typeof value === 'number' ? String(value).toLowerCase() : '';
  return text === '' || text.length > 255 ? null : text;
}

/**
 * Every position in the pattern that the name read so far can have reached, advanced one
 * character at a time: O(name × pattern), no backtracking. Placeholders become their values.
 */
function walk(pattern: Token[], name: string, who: Placeholders): boolean {
  const tokens: Token[] = [];
  for (const t of pattern) {
    if (t.kind !== 'var') {
      tokens.push(t);
      continue;
    }
    const value = valueOf(t.name, who);
    if (value === null) return false;
    for (const char of value) tokens.push({ kind: 'char', char });
  }
  const n = tokens.length;
  let active: Uint8Array = new Uint8Array(n + 1);
  const close = (set: Uint8Array): Uint8Array => {
    for (let i = 0; i < n; i++) if (set[i] && tokens[i]!.kind !== 'char') set[i + 1] = 1;
    return set;
  };
  active[0] = 1;
  close(active);
  for (const c of name) {
    const next = new Uint8Array(n + 1);
    let any = false;
    for (let i = 0; i < n; i++) {
      if (!active[i]) continue;
      const t = tokens[i]!;
      if (t.kind === 'char' ? t.char === c : t.kind === 'any' || c !== '/') {
        next[t.kind === 'char' ? i + 1 : i] = 1;
        any = true;
      }
    }
    if (!any) return false;
    active = close(next);
  }
  return active[n] === 1;
}

const VALUES_REGEX_CACHE = 1024;

/**
 * Up to two wildcards: one anchored regular expression. A placeholder is its value spelled out as
 * a literal (one expression per set of values, cached): a capture group instead would be wrong
 * next to another wildcard, since `([^/]+)[^/]*` captures "alice-x" for the user "alice".
 */
function regexMatcher(tokens: Token[]): (name: string, who: Placeholders) => boolean {
  const vars = tokens.filter((t): t is Extract<Token, { kind: 'var' }> => t.kind === 'var');
  const source = (values: readonly string[]): string => {
    let v = 0;
    return tokens.map((t) => (t.kind === 'any' ? '.*' : t.kind === 'star' ? '[^/]*' : escape(t.kind === 'char' ? t.char : values[v++]!))).join('');
  };
  if (vars.length === 0) {
    const regex = new RegExp(`^${source([])}$`);
    return (name) => regex.test(name);
  }
  const perValues = new Map<string, RegExp>();
  return (name, who) => {
    const values: string[] = [];
    for (const t of vars) {
      const value = valueOf(t.name, who);
      if (value === null) return false;
      values.push(value);
    }
    const key = values.join('\0');
    let regex = perValues.get(key);
    if (!regex) {
      if (perValues.size >= VALUES_REGEX_CACHE) perValues.clear();
      perValues.set(key, (regex = new RegExp(`^${source(values)}$`)));
    }
    return regex.test(name);
  };
}

function escape(text: string): string {
  return text.replace(/[.\\+?^$()[\]{}|*/-]/g, '\\$&');
}
