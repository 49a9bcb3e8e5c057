/**
 * CORS for registry web UIs served from another origin (joxit docker-registry-ui and the like):
 * the browser asks first (a preflight OPTIONS without credentials), so preflights from an allowed
 * origin are answered here, before any authentication; every other answer to that origin — 401
 * and 403 included — carries the CORS headers, or the page could not even see that it must log
 * in. The header values are the ones the UI's documentation asks of the registry.
 */
import type { IncomingHttpHeaders } from 'node:http';

export type CorsAnswer =
  /** Not a cross-origin request, or no origins configured: nothing to add. */
  | { kind: 'none' }
  /** A preflight from an allowed origin: answer 204 with these headers, no authentication. */
  | { kind: 'preflight'; headers: Record<string, string> }
  /** A preflight from an origin that is not allowed. */
  | { kind: 'refused'; reason: string }
  /** A request from an allowed origin, or any request while origins are configured: add these. */
  | { kind: 'headers'; headers: Record<string, string> };

const ALLOW_METHODS = 'HEAD, GET, OPTIONS, DELETE';
const ALLOW_HEADERS = 'Authorization, Accept, Cache-Control';
const EXPOSE_HEADERS = 'Docker-Content-Digest';
const PREFLIGHT_MAX_AGE_S = '600';

export function corsAnswer(allowedOrigins: readonly string[], method: string, headers: IncomingHttpHeaders): CorsAnswer {
  if (allowedOrigins.length === 0) return { kind: 'none' };
  const origin = headers.origin;
  const preflight = method === 'OPTIONS' && origin !== undefined && headers['access-control-request-method'] !== undefined;
  const allowed = origin !== undefined && (allowedOrigins.includes('*') || allowedOrigins.includes(origin));
  if (preflight && !allowed) return { kind: 'refused', reason: `origin ${origin} is not in cors.allowedOrigins` };
  // The answer depends on Origin: caches between here and the browser must keep them apart.
  if (!allowed) return { kind: 'headers', headers: { vary: 'Origin' } };
  // With credentials a browser refuses "*": the origin itself is named, for "*" too.
  const common = { 'access-control-allow-origin': origin, 'access-control-allow-credentials': 'true', vary: 'Origin' };
  if (preflight) {
    return {
      kind: 'preflight',
      headers: { ...common, 'access-control-allow-methods': ALLOW_METHODS, 'access-control-allow-headers': ALLOW_HEADERS, 'access-control-max-age': PREFLIGHT_MAX_AGE_S },
    };
  }
  return { kind: 'headers', headers: { ...common, 'access-control-expose-headers': EXPOSE_HEADERS } };
}

/** Why `origin` cannot be an entry of cors.allowedOrigins, or null: "*" or scheme://host[:port]. */
export function originProblem(origin: string): string | null {
  if (origin === '*') return null;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return 'is not an origin (write scheme://host[:port], e.g. "https://ui.example.com", or "*")';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'must start with http:// or https://';
  if (url.origin !== origin) return `is not an origin as browsers send it (no path, no trailing slash, lower case): "${url.origin}"`;
  return null;
}
