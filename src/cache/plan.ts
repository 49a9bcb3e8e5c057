/**
 * What a /v2/ request means to the response cache. Only answers that are small and the same for
 * every caller allowed to see them are kept: manifests (GET and HEAD) and blob HEADs. Blob bodies
 * stream through untouched.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Route } from '../registry/route.js';

export type CachePlan =
  /** May be answered from the cache; a miss fills it. `needsBody`: a HEAD can use a GET's entry, not the reverse. */
  | { kind: 'read'; repository: string; key: string; needsBody: boolean }
  /** Changes what cached answers for the repository would say. */
  | { kind: 'write'; repository: string };

/** Validators, ranges and no-cache ask the registry itself; such requests neither use nor fill the cache. */
const BYPASS_HEADERS = ['range', 'if-range', 'if-none-match', 'if-match', 'if-modified-since', 'if-unmodified-since'];

export function cachePlan(method: string, route: Route, headers: IncomingHttpHeaders): CachePlan | null {
  if (route.kind !== 'repository' || (route.endpoint !== 'manifest' && route.endpoint !== 'blob')) return null;
  const { name: repository, endpoint, reference } = route;

  if (method === 'GET' || method === 'HEAD') {
    if (endpoint === 'blob' && method === 'GET') return null;
    if (BYPASS_HEADERS.some((h) => headers[h] !== undefined) || asksForFreshAnswer(headers)) return null;
    // The registry picks a manifest's format from Accept (an index, a schema 2 manifest, or a 404), so it is part of the key.
    const variant = endpoint === 'manifest' ? normalizedAccept(headers.accept) : '';
    return { kind: 'read', repository, key: `${endpoint}\n${repository}\n${reference}\n${variant}`, needsBody: method === 'GET' };
  }
  // A manifest PUT can move a tag; a DELETE removes a manifest or a blob. Uploads change no existing answer.
  if (method === 'PUT' && endpoint === 'manifest') return { kind: 'write', repository };
  if (method === 'DELETE') return { kind: 'write', repository };
  return null;
}

function asksForFreshAnswer(headers: IncomingHttpHeaders): boolean {
  const cc = headers['cache-control'];
  if (cc !== undefined && /no-cache|no-store|max-age=0/i.test(cc)) return true;
  const pragma = headers.pragma;
  return pragma !== undefined && /no-cache/i.test(pragma);
}

function normalizedAccept(accept: string | undefined): string {
  if (!accept) return '';
  return accept
    .split(',')
    .map((part) => part.trim().toLowerCase())
    .filter(Boolean)
    .join(',');
}
