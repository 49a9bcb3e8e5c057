/**
 * An access token as stored: everything but its secret, of which only a SHA-256 hash is kept.
 * The secret is 32 random bytes, so a fast hash is enough (nothing to guess offline) and checking
 * one costs microseconds, not a bcrypt round. Its fixed prefix `rgt_` lets secret scanners
 * (GitHub's, gitleaks, trufflehog) be taught to find leaked ones.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { MAX_SCOPES, parseScope, type ScopeText } from '../../access/token-scope.js';

export const SECRET_PREFIX = 'rgt_';
const SECRET_PATTERN = /^rgt_[A-Za-z0-9_-]{43}$/;
/** Shell- and CI-variable-safe: no `$` (Harbor's `robot$…` breaks both), no spaces, no `:` (Basic auth). */
const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const DAY_MS = 86_400_000;

export interface StoredToken {
  name: string;
  owner: string;
  scopes: ScopeText[];
  /** ISO times. */
  created: string;
  expires: string;
  /** Who made it: the owner themselves, an admin, or the CLI ("cli"). */
  createdBy: string;
  /** base64url SHA-256 of the secret. */
  hash: string;
  /** Random per token: what registry tokens issued from it remember (a token made again under the same name is another). */
  id: string;
}

/** What `token list` and the self-service API show: never the hash. */
export interface TokenView {
  name: string;
  owner: string;
  scopes: string[];
  created: string;
  expires: string;
  expired: boolean;
  createdBy: string;
  lastUsed: string | null;
}

export function nameProblem(name: string): string | null {
  if (NAME_PATTERN.test(name)) return null;
  return `token name "${name.slice(0, 80)}" must be 1–64 letters, digits, ".", "_" or "-", starting with a letter or digit (it is typed as a user name and kept in shell variables)`;
}

/** `30d`, `12h` or a date (`2027-06-30`): when a token made now expires; or why not. */
export function parseExpiry(text: string, now: number, maxDays: number): { ok: true; expires: number } | { ok: false; reason: string } {
  let expires: number;
  const relative = /^(\d{1,5})([dh])$/.exec(text);
  if (relative) expires = now + Number(relative[1]) * (relative[2] === 'd' ? DAY_MS : DAY_MS / 24);
  else if (/^\d{4}-\d{2}-\d{2}$/.test(text) && !Number.isNaN(Date.parse(`${text}T00:00:00Z`))) expires = Date.parse(`${text}T00:00:00Z`);
  else return { ok: false, reason: `expiry "${text.slice(0, 40)}" must be a number of days or hours ("30d", "12h") or a date ("2027-06-30")` };
  if (expires <= now) return { ok: false, reason: `expiry "${text}" is not in the future` };
  if (expires > now + maxDays * DAY_MS) return { ok: false, reason: `expiry "${text}" is more than ${maxDays} days away (the tokens source's maxDays)` };
  return { ok: true, expires };
}

export function parseScopes(texts: readonly string[]): { ok: true; scopes: ScopeText[] } | { ok: false; reason: string } {
  if (texts.length === 0) return { ok: false, reason: 'a token needs at least one scope, e.g. "team-a/**:pull"' };
  if (texts.length > MAX_SCOPES) return { ok: false, reason: `at most ${MAX_SCOPES} scopes` };
  const scopes: ScopeText[] = [];
  for (const text of texts) {
    const parsed = parseScope(text);
    if (!parsed.ok) return parsed;
    scopes.push(parsed.scope);
  }
  return { ok: true, scopes };
}

export function newSecret(): string {
  return SECRET_PREFIX + randomBytes(32).toString('base64url');
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('base64url');
}

/** Constant time in the secret: the comparison is of two hashes of equal length. */
export function secretMatches(stored: StoredToken, secret: string): boolean {
  if (!SECRET_PATTERN.test(secret)) return false;
  const given = createHash('sha256').update(secret).digest();
  const expected = Buffer.from(stored.hash, 'base64url');
  return expected.length === given.length && timingSafeEqual(given, expected);
}

export function isExpired(stored: StoredToken, now: number): boolean {
  return Date.parse(stored.expires) <= now;
}

export function newRecord(fields: { name: string; owner: string; scopes: ScopeText[]; expires: number; createdBy: string; now: number }): { record: StoredToken; secret: string } {
  const secret = newSecret();
  return {
    secret,
    record: {
      name: fields.name,
      owner: fields.owner,
      scopes: fields.scopes,
      created: new Date(fields.now).toISOString(),
      expires: new Date(fields.expires).toISOString(),
      createdBy: fields.createdBy,
      hash: hashSecret(secret),
      id: randomBytes(12).toString('base64url'),
    },
  };
}

/** A stored record read back (a file, a Redis value): its shape checked, since a broken one must not become a token. */
export function readRecord(value: unknown): StoredToken | null {
  if (typeof value !== 'object' || value === null) return null;
  const r = value as Record<string, unknown>;
  const strings = ['name', 'owner', 'created', 'expires', 'createdBy', 'hash', 'id'] as const;
  if (!strings.every((k) => typeof r[k] === 'string')) return null;
  if (nameProblem(r.name as string) !== null || Number.isNaN(Date.parse(r.expires as string))) return null;
  if (!Array.isArray(r.scopes)) return null;
  const scopes: ScopeText[] = [];
  for (const s of r.scopes) {
    if (typeof s !== 'object' || s === null) return null;
    const { repositories, actions } = s as Record<string, unknown>;
    if (typeof repositories !== 'string' || !Array.isArray(actions) || !actions.every((a) => typeof a === 'string')) return null;
    const parsed = parseScope(`${repositories}:${actions.join(',')}`);
    if (!parsed.ok) return null;
    scopes.push(parsed.scope);
  }
  return { name: r.name as string, owner: r.owner as string, scopes, created: r.created as string, expires: r.expires as string, createdBy: r.createdBy as string, hash: r.hash as string, id: r.id as string };
}

export function viewOf(stored: StoredToken, lastUsed: number | null, now: number): TokenView {
  return {
    name: stored.name,
    owner: stored.owner,
    scopes: stored.scopes.map((s) => `${s.repositories}:${s.actions.join(',')}`),
    created: stored.created,
    expires: stored.expires,
    expired: isExpired(stored, now),
    createdBy: stored.createdBy,
    lastUsed: lastUsed === null ? null : new Date(lastUsed).toISOString(),
  };
}
