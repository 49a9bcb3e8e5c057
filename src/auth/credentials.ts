/**
 * What a request's Authorization header claims, before anything is verified.
 *
 * Every input ends in one of four shapes and nothing throws: the header is attacker-controlled and
 * the pipeline must be able to answer 401 for garbage instead of 500.
 */

export type Credentials =
  | { kind: 'none' }
  | { kind: 'basic'; user: string; password: string }
  | { kind: 'bearer'; token: string }
  | { kind: 'malformed' };

/** Well above any real token (Node's own header limit is 16 KiB), small enough to never matter for memory. */
export const MAX_AUTHORIZATION_LENGTH = 16 * 1024;

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
// RFC 7235 token68.
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

export function parseAuthorization(header: string | undefined): Credentials {
  if (header === undefined) return { kind: 'none' };
  if (header.length > MAX_AUTHORIZATION_LENGTH) return { kind: 'malformed' };
  // Node joins repeated headers with ", "; a tab or NUL here is never legitimate.
  if (/[\u0000-\u0008\u000a-\u001f\u007f]/.test(header)) return { kind: 'malformed' };
  const trimmed = header.trim();
  if (trimmed === '') return { kind: 'none' };

  const match = /^(\S+)[ \t]+(\S+)$/.exec(trimmed);
  if (!match) return { kind: 'malformed' };
  const scheme = match[1]!.toLowerCase();
  const value = match[2]!;

  if (scheme === 'basic') return parseBasic(value);
  if (scheme === 'bearer') return TOKEN68.test(value) ? { kind: 'bearer', token: value } : { kind: 'malformed' };
  return { kind: 'malformed' };
}

function parseBasic(value: string): Credentials {
  // Padding is optional in practice (some scripts strip it); anything else outside the alphabet is not.
  if (!BASE64.test(value) || value.length % 4 === 1) return { kind: 'malformed' };
  let decoded: string;
  try {
    decoded = utf8.decode(Buffer.from(value, 'base64'));
  } catch {
    return { kind: 'malformed' };
  }
  const colon = decoded.indexOf(':');
  if (colon < 0) return { kind: 'malformed' };
  // Control characters in a user name or password are credentials that cannot match, checked and
  // counted as a failed login like any other (the audit line escapes them), not a broken header.
  const user = decoded.slice(0, colon);
  const password = decoded.slice(colon + 1);
  // podman/skopeo send `Basic Og==` when they have no credentials: that is "anonymous", not a failed login.
  if (user === '' && password === '') return { kind: 'none' };
  return { kind: 'basic', user, password };
}
