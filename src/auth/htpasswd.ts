/**
 * The htpasswd file format: parsing for the proxy, line editing for `registry-gate passwd`.
 *
 * Only bcrypt is accepted (what `htpasswd -B` writes and what registry:2 itself accepts); the
 * other formats Apache understands are reported, never silently trusted.
 */

export interface SkippedLine {
  line: number;
  user: string;
  reason: string;
}

export interface ParsedHtpasswd {
  users: Map<string, string>;
  skipped: SkippedLine[];
}

const BCRYPT = /^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$/;
export const MIN_BCRYPT_COST = 4;
export const MAX_BCRYPT_COST = 31;
export const MAX_USERNAME_LENGTH = 255;

export function isBcryptHash(hash: string): boolean {
  const m = BCRYPT.exec(hash);
  if (!m) return false;
  const cost = Number(m[1]);
  return cost >= MIN_BCRYPT_COST && cost <= MAX_BCRYPT_COST;
}

/** Cost of a bcrypt hash, or null when it is not one. */
export function bcryptCost(hash: string): number | null {
  return isBcryptHash(hash) ? Number(hash.slice(4, 6)) : null;
}

/**
 * bcryptjs writes `$2b$`; Apache's `htpasswd -B` writes `$2y$`. They are the same algorithm, and
 * `$2y$` is the prefix every htpasswd consumer (Apache, nginx, registry:2) is known to accept.
 */
export function toApacheBcrypt(hash: string): string {
  return hash.replace(/^\$2[ab]\$/, '$2y$');
}

/** Why a name cannot be an htpasswd user, or null when it can. */
export function usernameProblem(user: string): string | null {
  if (user === '') return 'the user name is empty';
  if (user.includes(':')) return 'the user name contains ":" (Basic auth and htpasswd both split on it)';
  if (/[\u0000-\u001f\u007f]/.test(user)) return 'the user name contains control characters';
  if (user.length > MAX_USERNAME_LENGTH) return `the user name is longer than ${MAX_USERNAME_LENGTH} characters`;
  if (user.startsWith('#')) return 'the user name starts with "#" (it would read as a comment)';
  if (user !== user.trim()) return 'the user name has leading or trailing spaces';
  return null;
}

export function formatHtpasswdLine(user: string, hash: string): string {
  const problem = usernameProblem(user);
  if (problem) throw new Error(problem);
  return `${user}:${hash}`;
}

export function parseHtpasswd(text: string): ParsedHtpasswd {
  const users = new Map<string, string>();
  const firstLine = new Map<string, number>();
  const skipped: SkippedLine[] = [];

  splitLines(text).forEach((raw, index) => {
    const line = index + 1;
    const entry = parseEntryLine(raw);
    if (entry === null) return;
    if ('reason' in entry) {
      skipped.push({ line, user: entry.user, reason: entry.reason });
      return;
    }
    const earlier = firstLine.get(entry.user);
    if (earlier !== undefined) {
      // Apache uses the first matching line; so do we, and say so rather than pick silently.
      skipped.push({ line, user: entry.user, reason: `duplicate user, the entry on line ${earlier} is used` });
      return;
    }
    firstLine.set(entry.user, line);
    users.set(entry.user, entry.hash);
  });
  return { users, skipped };
}

type EntryLine = { user: string; hash: string } | { user: string; reason: string } | null;

/** null for blank lines and comments. */
function parseEntryLine(raw: string): EntryLine {
  const line = raw.trim();
  if (line === '' || line.startsWith('#')) return null;
  const colon = line.indexOf(':');
  // The user field is reported in logs, so a line without a colon (possibly a pasted password)
  // reports an empty user rather than its content.
  if (colon < 0) return { user: '', reason: 'not a "user:hash" line' };
  const user = line.slice(0, colon);
  const hash = line.slice(colon + 1);
  if (user === '') return { user, reason: 'empty user name' };
  if (isBcryptHash(hash)) return { user, hash };
  return { user, reason: describeUnsupportedHash(hash) };
}

function describeUnsupportedHash(hash: string): string {
  const advice = 're-create it with `registry-gate passwd add` or `htpasswd -B`';
  if (hash.startsWith('$apr1$')) return `MD5 (apr1) hash is not supported; ${advice}`;
  if (hash.startsWith('{SHA}')) return `SHA-1 hash is not supported; ${advice}`;
  if (/^\$[156]\$/.test(hash)) return `crypt(3) MD5/SHA hash is not supported; ${advice}`;
  if (/^\$2[aby]\$/.test(hash)) return `malformed bcrypt hash; ${advice}`;
  if (/^[./A-Za-z0-9]{13}$/.test(hash)) return `DES crypt hash is not supported; ${advice}`;
  return `not a bcrypt hash (plain text or unknown format); ${advice}`;
}

function splitLines(text: string): string[] {
  const lines = text.split(/\r?\n/);
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

function userOfLine(raw: string): string | null {
  const line = raw.trim();
  if (line === '' || line.startsWith('#')) return null;
  const colon = line.indexOf(':');
  return colon < 0 ? null : line.slice(0, colon);
}

function joinLines(lines: string[], original: string): string {
  const eol = original.includes('\r\n') ? '\r\n' : '\n';
  return lines.length === 0 ? '' : lines.join(eol) + eol;
}

/**
 * The file text with `user` set to `hash`: the user's first line is replaced in place (later
 * duplicates, which nobody reads, are dropped), or a line is appended. Every other line —
 * comments, other users, formats the proxy skips — is kept byte for byte.
 */
export function setHtpasswdEntry(text: string, user: string, hash: string): { text: string; replaced: boolean } {
  const entry = formatHtpasswdLine(user, hash);
  const out: string[] = [];
  let replaced = false;
  for (const raw of splitLines(text)) {
    if (userOfLine(raw) !== user) out.push(raw);
    else if (!replaced) {
      out.push(entry);
      replaced = true;
    }
  }
  if (!replaced) out.push(entry);
  return { text: joinLines(out, text), replaced };
}

/** The file text without any line for `user`. */
export function removeHtpasswdEntry(text: string, user: string): { text: string; removed: boolean } {
  const lines = splitLines(text);
  const kept = lines.filter((raw) => userOfLine(raw) !== user);
  return { text: joinLines(kept, text), removed: kept.length !== lines.length };
}

/** The raw hash field of the first line for `user`, whatever its format (for `passwd verify`). */
export function findHtpasswdHash(text: string, user: string): string | null {
  for (const raw of splitLines(text)) {
    if (userOfLine(raw) === user) {
      const line = raw.trim();
      return line.slice(line.indexOf(':') + 1);
    }
  }
  return null;
}

/** Below this a guess is cheap to check: ~2 ms at cost 5 against ~60 ms at 10 (bcryptjs, measured). */
const MIN_GOOD_COST = 10;

/** Users whose bcrypt cost is below MIN_GOOD_COST, with their cost. */
function cheapEntries(users: ReadonlyMap<string, string>): [string, number][] {
  const cheap: [string, number][] = [];
  for (const [user, hash] of users) {
    const cost = bcryptCost(hash);
    if (cost !== null && cost < MIN_GOOD_COST) cheap.push([user, cost]);
  }
  return cheap;
}

/** One line for the operator about cheap entries, or null. */
export function cheapEntriesWarning(users: ReadonlyMap<string, string>): string | null {
  const cheap = cheapEntries(users);
  if (cheap.length === 0) return null;
  const list = cheap.slice(0, 5).map(([user, cost]) => `${user} (${cost})`).join(', ');
  return (
    `${cheap.length} user(s) with a bcrypt cost below ${MIN_GOOD_COST}: ${list}${cheap.length > 5 ? ', …' : ''}; ` +
    `each guess is cheap to check — set the password again with \`registry-gate passwd add USER\` (cost ${MIN_GOOD_COST})`
  );
}
