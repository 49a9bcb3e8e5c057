/**
 * Which resource and action a /v2/ request touches, so that it can be authorized before it is
 * forwarded.
 *
 * The decision is only sound if the registry reads the path the same way. distribution decodes
 * percent-escapes and routes on the decoded path, and its name grammar allows `/`; so the path is
 * decoded here too, and anything whose meaning could differ between us and it (encoded slashes or
 * backslashes, dot segments, empty segments, odd characters) is `unknown` — refused for every
 * caller but those who may do everything, and then forwarded byte for byte as it came.
 */
import { isRepositoryName, type Access } from './scope.js';
import type { RegistryParams } from './inputs.js';

export type RepositoryEndpoint = 'manifest' | 'blob' | 'upload' | 'tags' | 'referrers';
export type Action = 'pull' | 'push' | 'delete';

/**
 * What a request is, decided once in the pipeline and handed to the gate, the cache, the
 * forwarder and the audit log, so that no later step reads the path differently.
 */
export type Route =
  | { kind: 'ping' }
  | { kind: 'catalog'; needs: Access[] }
  | {
      kind: 'repository';
      endpoint: RepositoryEndpoint;
      name: string;
      /** The last path segment: tag or digest (manifests), digest (blobs), upload id, "list" … */
      reference: string;
      /** A manifest reference that is a tag rather than a digest. */
      tag: string | null;
      /** Every entry must be granted; the first is the request's own repository. */
      needs: Access[];
      /**
       * A request inside an upload session already opened (its id in the path: status, a chunk,
       * the final PUT), which may go on after the token that opened it expired (auth/gate.ts).
       */
      session: boolean;
    }
  /**
   * A read of a readable repository whose reference or digest is malformed: answered by the gate
   * as the registry (or the spec, where registry 2.8 answers 500) answers it, never forwarded.
   */
  | { kind: 'malformed'; name: string; needs: Access[]; code: 'MANIFEST_UNKNOWN' | 'DIGEST_INVALID'; message: string }
  | { kind: 'unknown' };

const MAX_PATH_LENGTH = 2048;
// Every character a repository name, tag, digest or upload id can contain, after decoding.
const SEGMENT = /^[A-Za-z0-9._:+=-]+$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const UPLOAD_ID = /^[A-Za-z0-9_.=-]+$/;

const UNKNOWN: Route = { kind: 'unknown' };

export function isTagName(text: string): boolean {
  return TAG.test(text);
}
const CATALOG: Access = { type: 'registry', name: 'catalog', actions: ['*'] };

/**
 * The actions a method needs on its repository, as distribution's own access controller asks
 * them (`registry/handlers/app.go`): a write also reads (an upload's status, a manifest's blobs),
 * so it needs pull and push; a rule therefore means the same here as behind the registry's own
 * token auth.
 */
export function actionsForMethod(method: string): Action[] | null {
  switch (method) {
    case 'GET':
    case 'HEAD':
      return ['pull'];
    case 'POST':
    case 'PUT':
    case 'PATCH':
      return ['pull', 'push'];
    case 'DELETE':
      return ['delete'];
    default:
      return null;
  }
}

/** The route of one request. `params` (query and form body, see inputs.ts) matter for a cross-repository mount. */
export function classifyRequest(method: string, pathname: string, params: RegistryParams): Route {
  const segments = v2Segments(pathname);
  if (segments === null) return UNKNOWN;
  const reading = method === 'GET' || method === 'HEAD';

  if (segments.length === 0 || (segments.length === 1 && segments[0] === '')) return reading ? { kind: 'ping' } : UNKNOWN;
  if (segments.length === 1 && segments[0] === '_catalog') return reading ? { kind: 'catalog', needs: [CATALOG] } : UNKNOWN;

  const byMethod = actionsForMethod(method);
  const target = matchRepositoryRoute(segments);
  if (!target) return reading ? (malformedRead(segments) ?? UNKNOWN) : UNKNOWN;
  if (!byMethod) return UNKNOWN;
  // An upload URL belongs to a push under way: its status (GET) and its cancellation (DELETE)
  // are the pusher's, not every reader's or deleter's.
  const actions: Action[] = target.endpoint === 'upload' ? ['pull', 'push'] : byMethod;
  const own: Access = { type: 'repository', name: target.name, actions };
  const tag = target.endpoint === 'manifest' && TAG.test(target.reference) ? target.reference : null;
  if (reading && (target.endpoint === 'manifest' || target.endpoint === 'blob') && tag === null) {
    const invalid = invalidDigest(target.reference);
    if (invalid !== null) return { kind: 'malformed', name: target.name, needs: [{ type: 'repository', name: target.name, actions: ['pull'] }], code: 'DIGEST_INVALID', message: invalid };
  }
  const sources = mountSources(method, target.endpoint, params);
  if (sources === null) return UNKNOWN;
  const { uploadId, ...where } = target;
  const session = uploadId && (method === 'PATCH' || method === 'PUT' || reading);
  return { kind: 'repository', ...where, tag, needs: [own, ...sources], session };
}

/**
 * `POST /v2/B/blobs/uploads/?mount=<digest>&from=A` reads A, so it needs pull on A — otherwise
 * anyone allowed to push somewhere could copy blobs out of any repository whose digests they know.
 * Every `from` given (query or form body) is asked, whichever the registry picks. Null (unknown)
 * for a source that is not a plain repository name: the registry's own grammar also takes a host
 * part, which no rule here names.
 */
function mountSources(method: string, endpoint: RepositoryEndpoint, params: RegistryParams): Access[] | null {
  if (method !== 'POST' || endpoint !== 'upload') return [];
  // The registry mounts only when both are non-empty.
  const sources = params.all('from').filter((from) => from !== '');
  if (sources.length === 0 || !params.all('mount').some((mount) => mount !== '')) return [];
  if (!sources.every(isRepositoryName)) return null;
  return [...new Set(sources)].map((name) => ({ type: 'repository', name, actions: ['pull'] }));
}

/** Digests whose algorithm fixes the length: one that cannot be valid is 400, where registry 2.8 answers 500. */
const DIGEST_LENGTH: Record<string, number> = { sha256: 64, sha512: 128 };

/**
 * `GET|HEAD /v2/<name>/manifests/<ref>` with a reference that is neither a tag nor a digest (the
 * conformance suite's `.INVALID_MANIFEST_NAME`) is the registry's 404; `…/blobs/<digest>` or
 * `…/manifests/<digest>` with a digest of the wrong length is the spec's 400 DIGEST_INVALID. The
 * name must be a plain repository name: the caller then needs pull there, as for any read.
 */
function malformedRead(segments: string[]): Route | null {
  const n = segments.length;
  const last = segments[n - 1]!;
  const endpoint = segments[n - 2];
  if (n < 3 || last === '' || (endpoint !== 'manifests' && endpoint !== 'blobs')) return null;
  const name = segments.slice(0, n - 2).join('/');
  if (!isRepositoryName(name)) return null;
  const needs: Access[] = [{ type: 'repository', name, actions: ['pull'] }];
  if (endpoint === 'manifests' && !TAG.test(last) && !DIGEST.test(last)) return { kind: 'malformed', name, needs, code: 'MANIFEST_UNKNOWN', message: `manifest unknown: "${last}" is neither a tag nor a digest` };
  return null;
}

/** A digest of a known algorithm whose hex part cannot be one; null when it may be valid. */
export function invalidDigest(digest: string): string | null {
  const [algorithm = '', hex = ''] = digest.split(':', 2);
  const length = DIGEST_LENGTH[algorithm];
  if (length === undefined || (hex.length === length && /^[0-9a-f]+$/.test(hex))) return null;
  return `digest invalid: a ${algorithm} digest is ${length} lower-case hex characters`;
}

/** The decoded segments after `/v2/`, or null when the path is not one we can read unambiguously. */
function v2Segments(pathname: string): string[] | null {
  if (pathname.length > MAX_PATH_LENGTH) return null;
  if (pathname === '/v2') return [];
  if (!pathname.startsWith('/v2/')) return null;
  const segments: string[] = [];
  const raw = pathname.slice('/v2/'.length).split('/');
  for (let i = 0; i < raw.length; i++) {
    const decoded = decodeSegment(raw[i]!);
    if (decoded === null) return null;
    // A trailing slash is meaningful (`/v2/`, `…/blobs/uploads/`); an empty segment elsewhere is
    // something the registry's router would clean or redirect, so its reading is not ours to guess.
    if (decoded === '' && i !== raw.length - 1) return null;
    if (decoded === '.' || decoded === '..') return null;
    if (decoded !== '' && !SEGMENT.test(decoded)) return null;
    segments.push(decoded);
  }
  return segments;
}

/** Percent-decoding of one segment; null for broken escapes and for escapes of `/`, `\`, `%` or non-ASCII. */
function decodeSegment(segment: string): string | null {
  if (!segment.includes('%')) return segment;
  let out = '';
  for (let i = 0; i < segment.length; i++) {
    const ch = segment[i]!;
    if (ch !== '%') {
      out += ch;
      continue;
    }
    const hex = segment.slice(i + 1, i + 3);
    if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return null;
    const code = parseInt(hex, 16);
    // SEGMENT rejects the rest; these would change the path's structure if decoded.
    if (code === 0x2f || code === 0x5c || code === 0x25 || code >= 0x80) return null;
    out += String.fromCharCode(code);
    i += 2;
  }
  return out;
}

function matchRepositoryRoute(segments: string[]): { name: string; endpoint: RepositoryEndpoint; reference: string; uploadId: boolean } | null {
  const n = segments.length;
  const last = segments[n - 1]!;
  const before = segments[n - 2];
  let nameLength: number;
  let endpoint: RepositoryEndpoint;
  let uploadId = false;

  if (last === '') {
    // `…/blobs/uploads/`: start an upload.
    if (n < 4 || segments[n - 3] !== 'blobs' || before !== 'uploads') return null;
    nameLength = n - 3;
    endpoint = 'upload';
  } else if (before === 'manifests') {
    if (!TAG.test(last) && !DIGEST.test(last)) return null;
    nameLength = n - 2;
    endpoint = 'manifest';
  } else if (before === 'blobs') {
    // `…/blobs/uploads` without the slash is the same upload start to the registry's router.
    if (last !== 'uploads' && !DIGEST.test(last)) return null;
    nameLength = n - 2;
    endpoint = last === 'uploads' ? 'upload' : 'blob';
  } else if (before === 'uploads' && segments[n - 3] === 'blobs') {
    if (!UPLOAD_ID.test(last)) return null;
    nameLength = n - 3;
    endpoint = 'upload';
    uploadId = true;
  } else if (before === 'tags' && last === 'list') {
    nameLength = n - 2;
    endpoint = 'tags';
  } else if (before === 'referrers') {
    if (!DIGEST.test(last)) return null;
    nameLength = n - 2;
    endpoint = 'referrers';
  } else {
    return null;
  }
  if (nameLength < 1) return null;
  const name = segments.slice(0, nameLength).join('/');
  return isRepositoryName(name) ? { name, endpoint, reference: last, uploadId } : null;
}
