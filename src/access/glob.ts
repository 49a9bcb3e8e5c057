/**
 * Repository and tag patterns of the access rules: `*` stands for any run of characters within one
 * path component, `**` for any run including `/`, `${user}` for the caller's user name as one
 * component. Everything else is literal. Patterns come from the operator, names from the network:
 * a pattern with up to two wildcards is one anchored regular expression (at most quadratic in a
 * 255-character name); one with more is matched by a state-set walk that is linear in the name,
 * since `**a**a**a**b` as a backtracking regex takes hours on "aaaa…".
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

type Token = { kind: 'char'; char: string } | { kind: 'star' } | { kind: 'any' } | { kind: 'user' };

export function compileGlob(pattern: string): Glob {
  const head = pattern.split('/')[0]!;
  const tokens = tokenize(pattern);
  const wildcards = tokens.filter((t) => t.kind !== 'char').length;
  const shared = {
    source: pattern,
    literalHead: /[*$]/.test(head) ? null : head,
    userHead: head === USER_PLACEHOLDER,
    matchesAll: pattern === '**',
  };
  if (wildcards > 2) return { ...shared, matches: (name, user) => walk(tokens, name, user) };
  return { ...shared, matches: regexMatcher(tokens) };
}

function tokenize(pattern: string): Token[] {
  const tokens: Token[] = [];
  for (let i = 0; i < pattern.length; ) {
    if (pattern.startsWith(USER_PLACEHOLDER, i)) {
      tokens.push({ kind: 'user' });
      i += USER_PLACEHOLDER.length;
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

/**
 * Every position in the pattern that the name read so far can have reached, advanced one
 * character at a time: O(name × pattern), no backtracking. `${user}` becomes the caller's name.
 */
function walk(pattern: Token[], name: string, user: string | null): boolean {
  const tokens: Token[] = [];
  for (const t of pattern) {
    if (t.kind !== 'user') tokens.push(t);
    else if (user === null || user === '' || user.includes('/')) return false;
    else for (const char of user) tokens.push({ kind: 'char', char });
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

const USER_REGEX_CACHE = 1024;

/**
 * Up to two wildcards: one anchored regular expression. `${user}` is the caller's name spelled
 * out as a literal (one expression per user, cached): a capture group instead would be wrong next
 * to another wildcard, since `([^/]+)[^/]*` captures "alice-x" for the user "alice".
 */
function regexMatcher(tokens: Token[]): (name: string, user: string | null) => boolean {
  const source = (user: string | null): string =>
    tokens
      .map((t) => (t.kind === 'any' ? '.*' : t.kind === 'star' ? '[^/]*' : escape(t.kind === 'char' ? t.char : user!)))
      .join('');
  if (!tokens.some((t) => t.kind === 'user')) {
    const regex = new RegExp(`^${source(null)}$`);
    return (name) => regex.test(name);
  }
  const perUser = new Map<string, RegExp>();
  return (name, user) => {
    if (user === null || user === '' || user.includes('/')) return false;
    let regex = perUser.get(user);
    if (!regex) {
      if (perUser.size >= USER_REGEX_CACHE) perUser.clear();
      perUser.set(user, (regex = new RegExp(`^${source(user)}$`)));
    }
    return regex.test(name);
  };
}

function escape(text: string): string {
  return text.replace(/[.\\+?^$()[\]{}|*/-]/g, '\\$&');
}
