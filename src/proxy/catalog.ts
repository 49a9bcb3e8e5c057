/**
 * `/v2/_catalog` for a caller who may not pull everything: the registry's list, filtered to the
 * repositories the caller may pull, paginated with `n`/`last` and a `Link` header like the
 * registry's own, so that clients paging through it see consistent pages.
 */
import { listPages, type RegistryQuestions } from './upstream-client.js';
import { isRepositoryName } from '../registry/scope.js';

export const DEFAULT_PAGE = 100;
export const MAX_PAGE = 1000;
/** What the proxy asks the registry for per round; a filtered page may need several. */
const UPSTREAM_PAGE = 1000;
/** A registry with more repositories than this is listed in parts by following `Link`. */
const MAX_UPSTREAM_ROUNDS = 1000;

export type CatalogPage = { ok: true; repositories: string[]; next: string | null } | { ok: false; reason: string };

export function pageSize(query: URLSearchParams): number | null {
  const raw = query.get('n');
  if (raw === null || raw === '') return DEFAULT_PAGE;
  if (!/^\d{1,7}$/.test(raw)) return null;
  return Math.min(Math.max(Number(raw), 1), MAX_PAGE);
}

export async function filteredCatalog(client: RegistryQuestions, n: number, last: string | null, mayPull: (name: string) => boolean): Promise<CatalogPage> {
  const shown: string[] = [];
  try {
    for await (const names of listPages(client, '/v2/_catalog', last, { field: 'repositories', accept: isRepositoryName, pageSize: UPSTREAM_PAGE, maxRounds: MAX_UPSTREAM_ROUNDS })) {
      for (const name of names) {
        if (!mayPull(name)) continue;
        // One more than the page holds tells whether there is a next page.
        if (shown.length === n) return { ok: true, repositories: shown, next: shown[n - 1]! };
        shown.push(name);
      }
    }
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  }
  return { ok: true, repositories: shown, next: null };
}

/** The `Link` to the page after `next`, for the catalog and a repository's tags alike. */
export function nextLink(path: string, n: number, next: string): string {
  return `<${path}?${new URLSearchParams({ last: next, n: String(n) })}>; rel="next"`;
}
