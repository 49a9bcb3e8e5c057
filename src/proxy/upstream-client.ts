/**
 * Questions the proxy asks the registry itself (the catalog it filters, the digest a protected
 * tag points to), as opposed to requests it forwards. Small answers only, each with a deadline.
 */
export interface UpstreamAnswer {
  status: number;
  headers: Headers;
  body: string;
}

/** Every manifest format, so that the registry answers with the digest it stored (no conversion). */
export const ANY_MANIFEST =
  'application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, ' +
  'application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, ' +
  'application/vnd.docker.distribution.manifest.v1+prettyjws';

const MAX_ANSWER_BYTES = 4 * 1024 * 1024;

export interface RegistryQuestions {
  /** `path` is one the proxy built from names it validated (it starts with /v2/). */
  ask(method: 'GET' | 'HEAD', path: string, headers?: Record<string, string>): Promise<UpstreamAnswer>;
}

export class UpstreamClient implements RegistryQuestions {
  private readonly base: string;

  constructor(
    upstream: string,
    private readonly timeoutMs: number,
  ) {
    this.base = upstream.replace(/\/+$/, '');
  }

  async ask(method: 'GET' | 'HEAD', path: string, headers: Record<string, string> = {}): Promise<UpstreamAnswer> {
    const res = await fetch(this.base + path, { method, headers, redirect: 'manual', signal: AbortSignal.timeout(this.timeoutMs) });
    const length = Number(res.headers.get('content-length') ?? 0);
    if (length > MAX_ANSWER_BYTES) {
      await res.body?.cancel();
      throw new Error(`the registry's answer to ${method} ${path} is larger than ${MAX_ANSWER_BYTES} bytes`);
    }
    return { status: res.status, headers: res.headers, body: method === 'HEAD' ? '' : await res.text() };
  }
}

export interface ListOptions {
  /** The JSON field holding the names: `repositories` (catalog) or `tags`. */
  field: 'repositories' | 'tags';
  /** Names the proxy may use (they are put into paths and shown to clients); others are dropped. */
  accept: (name: string) => boolean;
  pageSize: number;
  /** A registry with more than pageSize × maxRounds names is read that far and no further. */
  maxRounds: number;
  /** A 404 means "nothing listed" (a repository without tags) instead of an error. */
  notFoundIsEmpty?: boolean;
}

/**
 * The pages of a list the registry paginates with `n`/`last` and a `Link` header (the catalog, a
 * repository's tags), starting after `start`. Throws, with the reason, on an answer it cannot use.
 */
export async function* listPages(client: RegistryQuestions, path: string, start: string | null, opts: ListOptions): AsyncGenerator<string[]> {
  let cursor = start;
  for (let round = 0; round < opts.maxRounds; round++) {
    const query = new URLSearchParams({ n: String(opts.pageSize) });
    if (cursor) query.set('last', cursor);
    const answer = await client.ask('GET', `${path}?${query}`);
    if (answer.status === 404 && opts.notFoundIsEmpty) return;
    if (answer.status !== 200) throw new Error(`the registry answered ${answer.status} to ${path}`);
    const names = parseNames(answer.body, opts.field);
    if (names === null) throw new Error(`the registry sent an answer to ${path} that the proxy cannot read`);
    const page = names.filter(opts.accept);
    yield page;
    const end = page[page.length - 1];
    // A short page, no Link, or a cursor that does not move on: the list is over.
    if (page.length < opts.pageSize || !answer.headers.get('link') || end === undefined || (cursor !== null && end <= cursor)) return;
    cursor = end;
  }
}

function parseNames(body: string, field: string): string[] | null {
  try {
    const value = (JSON.parse(body) as Record<string, unknown>)[field];
    // distribution answers `"tags": null` for a repository without tags.
    if (value === null) return [];
    return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : null;
  } catch {
    return null;
  }
}
