/**
 * Claims of an OIDC ID token (a CI job's identity) as the config speaks of them: conditions a
 * token must meet (`require` of a source, `claims` of a rule or a protected tag) and templates
 * that build names from them (`subject`, `groups`, `${claims.…}` in repository patterns).
 *
 * Issuers disagree on types — GitLab sends `"true"` and `"12"` where GitHub sends `true` and `12` —
 * so a condition compares text: `true` in the config matches both `true` and `"true"`, and never
 * `"false"`. A condition value with `*` is a pattern where `*` is any run of characters, `/`
 * included (`refs/heads/release/*`). A list is any of its values; a claim that is a list (`aud`,
 * `groups`) meets a condition when one of its items does.
 */

export type ClaimValue = string | number | boolean;
export type ClaimCondition = ClaimValue | ClaimValue[];
export type Claims = Readonly<Record<string, unknown>>;

/** Claim text longer than this never matches (a hostile token cannot make matching costly). */
const MAX_CLAIM_TEXT = 1024;
const PATH = /^[A-Za-z0-9_.:-]+$/;
const TEMPLATE_VAR = /\$\{([^}]*)\}/g;

/**
 * The value at a claim path. Segments are split at dots, but a key that itself has dots
 * (`kubernetes.io`) is found too: at each level the longest run of segments that is a key wins.
 */
export function claimAt(claims: Claims, path: string): unknown {
  const segments = path.split('.');
  let here: unknown = claims;
  let i = 0;
  while (i < segments.length) {
    if (typeof here !== 'object' || here === null || Array.isArray(here)) return undefined;
    const object = here as Record<string, unknown>;
    let next = -1;
    for (let j = segments.length; j > i; j--) {
      if (Object.hasOwn(object, segments.slice(i, j).join('.'))) {
        next = j;
        break;
      }
    }
    if (next === -1) return undefined;
    here = object[segments.slice(i, next).join('.')];
    i = next;
  }
  return here;
}

/** A claim as text, or null when it is not a plain value (an object, missing, too long). */
function asText(value: unknown): string | null {
  if (typeof value === 'string') return value.length <= MAX_CLAIM_TEXT ? value : null;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value === 'boolean') return String(value);
  return null;
}

/** `*` is any run of characters; linear in practice, O(text × pattern) at worst (no backtracking regex). */
export function wildcardMatch(pattern: string, text: string): boolean {
  let p = 0;
  let t = 0;
  let star = -1;
  let mark = 0;
  while (t < text.length) {
    if (p < pattern.length && pattern[p] !== '*' && pattern[p] === text[t]) {
      p++;
      t++;
    } else if (p < pattern.length && pattern[p] === '*') {
      star = p++;
      mark = t;
    } else if (star !== -1) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === '*') p++;
  return p === pattern.length;
}

function valueMatches(condition: ClaimValue, claim: unknown): boolean {
  const items = Array.isArray(claim) ? claim : [claim];
  const wanted = String(condition);
  const pattern = typeof condition === 'string' && condition.includes('*');
  return items.some((item) => {
    const text = asText(item);
    if (text === null) return false;
    return pattern ? wildcardMatch(wanted, text) : text === wanted;
  });
}

export type ConditionResult = { ok: true } | { ok: false; claim: string; why: string };

export interface Conditions {
  readonly paths: readonly string[];
  check(claims: Claims): ConditionResult;
}

/** All must hold. */
export function compileConditions(conditions: Readonly<Record<string, ClaimCondition>>): Conditions {
  const entries = Object.entries(conditions).map(([path, condition]) => ({ path, values: Array.isArray(condition) ? condition : [condition] }));
  return {
    paths: entries.map((e) => e.path),
    check(claims) {
      for (const { path, values } of entries) {
        const claim = claimAt(claims, path);
        if (values.some((v) => valueMatches(v, claim))) continue;
        const expected = values.map((v) => JSON.stringify(v)).join(' or ');
        const got = claim === undefined ? 'missing' : `${shown(claim)}`;
        return { ok: false, claim: path, why: `claim "${path}" is ${got}, not ${expected}` };
      }
      return { ok: true };
    },
  };
}

/** How a claim appears in a message: its value, cut short; it is not a secret, but it is the caller's text. */
function shown(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 80)}…` : text;
}

/** Why a condition key or value cannot be used, or null. */
export function conditionProblem(path: string, condition: unknown): string | null {
  if (!PATH.test(path)) return `"${path}" is not a claim name (letters, digits, ".", "_", "-", ":"; "." reaches into nested claims)`;
  const values = Array.isArray(condition) ? condition : [condition];
  if (values.length === 0) return `"${path}": an empty list matches nothing; give at least one value`;
  for (const v of values) {
    if (typeof v !== 'string' && typeof v !== 'boolean' && !(typeof v === 'number' && Number.isFinite(v))) {
      return `"${path}": expected text, a number, true/false or a list of them, got ${JSON.stringify(v)}`;
    }
  }
  return null;
}

export type Rendered = { ok: true; text: string } | { ok: false; why: string };

/** `${path}` replaced by the claim there; a missing or non-plain claim fails (an identity is never built from half a template). */
export function renderTemplate(template: string, claims: Claims): Rendered {
  let missing: string | null = null;
  const text = template.replace(TEMPLATE_VAR, (_, path: string) => {
    const value = asText(claimAt(claims, path));
    if (value === null) missing ??= path;
    return value ?? '';
  });
  if (missing !== null) return { ok: false, why: `claim "${missing}" is missing or not a plain value` };
  return { ok: true, text };
}

/** The claim paths a template reads. */
export function templatePaths(template: string): string[] {
  return [...template.matchAll(TEMPLATE_VAR)].map((m) => m[1]!);
}

/** Why a template cannot be used, or null. */
export function templateProblem(template: string): string | null {
  if (!/\$\{/.test(template)) return null;
  for (const path of templatePaths(template)) if (!PATH.test(path)) return `"\${${path}}" is not a claim name`;
  if (template.replace(TEMPLATE_VAR, '').includes('$')) return 'has a "$" outside ${claim}';
  return null;
}

/**
 * Only the claims at these paths, flat (`{"kubernetes.io.namespace": "ci"}`): what a registry token
 * carries so the gate can ask the rules again. `claimAt` reads the flat form as well.
 */
export function pickClaims(claims: Claims, paths: Iterable<string>): Record<string, ClaimValue | ClaimValue[]> {
  const picked: Record<string, ClaimValue | ClaimValue[]> = {};
  for (const path of paths) {
    const value = claimAt(claims, path);
    if (Array.isArray(value)) {
      const items = value.filter((v) => asText(v) !== null).slice(0, 64) as ClaimValue[];
      if (items.length) picked[path] = items;
    } else if (asText(value) !== null) {
      picked[path] = value as ClaimValue;
    }
  }
  return picked;
}
