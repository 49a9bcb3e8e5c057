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
