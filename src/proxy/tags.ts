/**
 * `GET /v2/<name>/tags/list?n=…&last=…`: registry 2.8 ignores `n` and `last` and returns every
 * tag, which breaks clients that page (the OCI distribution spec's content discovery). The gate
 * pages the registry's own list the way the spec says — lexical order, tags after `last`, at most
 * `n`, a `Link` to the next page — and leaves requests without either parameter to the registry.
 */
import type { RegistryQuestions } from './upstream-client.js';
import { isTagName } from '../registry/route.js';

export type TagsPage =
  | { ok: true; name: string; tags: string[]; next: string | null }
  /** The registry's own refusal (a repository it does not know), to pass on as it came. */
  | { ok: false; status: number; body: string; contentType: string }
  | { ok: false; status: null };

export async function pagedTags(client: RegistryQuestions, name: string, n: number, last: string | null): Promise<TagsPage> {
  const answer = await client.ask('GET', `/v2/${name}/tags/list`);
  if (answer.status !== 200) return { ok: false, status: answer.status, body: answer.body, contentType: answer.headers.get('content-type') ?? 'application/json; charset=utf-8' };
  let tags: string[];
  try {
    const listed = (JSON.parse(answer.body) as { tags?: unknown }).tags;
    tags = Array.isArray(listed) ? listed.filter((t): t is string => typeof t === 'string' && isTagName(t)) : [];
  } catch {
    return { ok: false, status: null };
  }
  const after = [...new Set(tags)].sort().filter((tag) => last === null || tag > last);
  const page = after.slice(0, n);
  return { ok: true, name, tags: page, next: after.length > n ? page[page.length - 1]! : null };
}
