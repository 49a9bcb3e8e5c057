/**
 * Every input the registry acts on, and how the gate holds it to what it authorized. A request is
 * only authorized when the gate reads each of these exactly as distribution 2.8 reads them; an
 * input it cannot read the same way is refused, never passed on unread.
 *
 * | input | read by the registry as | held by the gate |
 * | --- | --- | --- |
 * | path | mux routes on the decoded path: name, reference, digest, upload id | `route.ts`: decoded once, ambiguous spellings are `unknown`, forwarded byte for byte |
 * | `from`, `mount` (upload start) | `r.FormValue`: urlencoded body first, then query, then multipart body | here: every value anywhere must be granted; the registry's pick goes to the audit line; differing values are refused |
 * | `digest` (upload PUT) | `r.FormValue` | here: for the audit line; differing values refused (the blob lands in the authorized repository either way) |
 * | `_state` (upload id routes) | `r.FormValue`, HMAC-signed, bound to the path's repository and upload id | passed; differing values refused |
 * | `n`, `last` (catalog) | `r.URL.Query()` | filtered catalogs are answered by the gate; others are the registry's own answer |
 * | form body | parsed by `FormValue` when urlencoded (POST/PUT/PATCH, up to 10 MB) or multipart (any method) | urlencoded: read whole (≤ FORM_BODY_LIMIT), merged here, forwarded as read; multipart: refused |
 * | `Content-Type` | decides whether the body is a form; a manifest's media type | non-ASCII refused (Go lower-cases by Unicode rules, `İ` becomes `i`) |
 * | `Content-Range`, `Content-Length`, `Range`, `Accept`, `If-*` | offsets and representations within the routed resource | passed: they never name another repository |
 * | `Host`, `X-Forwarded-*`, `Forwarded` | the `Location` it builds | set by the gate (`proxy/headers.ts`); client copies dropped unless the peer is trusted |
 * | `Authorization` | nothing (its auth is off behind the gate) | removed before forwarding |
 */

/** Values of one request's parameters as Go's `url.Values` holds them. */
export type FormValues = Map<string, string[]>;

/** Parameters the registry reads through `FormValue`; a request that names one twice differently is refused. */
const REGISTRY_PARAMETERS = ['from', 'mount', 'digest', '_state'] as const;

/** No registry client sends a form; a real one is a handful of fields. */
export const FORM_BODY_LIMIT = 16 * 1024;

export interface RegistryParams {
  /** The value the registry acts on (`r.FormValue`), or undefined when the parameter is absent. */
  value(name: string): string | undefined;
  /** Every value given anywhere, so that none the registry might pick goes unauthorized. */
  all(name: string): string[];
  /** A parameter the registry reads, given with differing values; null when there is none. */
  conflict: string | null;
}

/**
 * Go's `url.ParseQuery`: pairs split on `&` only; a pair with `;` or a broken escape is skipped
 * (URLSearchParams keeps both, so `from=%zz&from=secret/x` meant different things to it and to
 * the registry); `+` is a space.
 */
export function parseGoQuery(text: string): FormValues {
  const values: FormValues = new Map();
  for (const pair of text.split('&')) {
    if (pair === '' || pair.includes(';')) continue;
    const eq = pair.indexOf('=');
    const key = goUnescape(eq === -1 ? pair : pair.slice(0, eq));
    const value = goUnescape(eq === -1 ? '' : pair.slice(eq + 1));
    if (key === null || value === null) continue;
    const list = values.get(key);
    if (list) list.push(value);
    else values.set(key, [value]);
  }
  return values;
}

const utf8 = new TextDecoder('utf-8');

/** Go's `url.QueryUnescape`; null where Go fails (and so skips the pair). */
function goUnescape(text: string): string | null {
  if (!text.includes('%') && !text.includes('+')) return text;
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (ch === 0x25) {
      const hex = text.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return null;
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else if (ch === 0x2b) {
      bytes.push(0x20);
    } else {
      for (const b of Buffer.from(text[i]!, 'latin1')) bytes.push(b);
    }
  }
  return utf8.decode(Uint8Array.from(bytes));
}

export type BodyForm = 'none' | 'urlencoded' | 'multipart' | 'unreadable';

/**
 * Whether Go would parse this request's body as a form. Its `mime.ParseMediaType` lower-cases the
 * part before `;` by Unicode rules and trims Unicode space; for ASCII that is what is done here,
 * and a non-ASCII Content-Type is `unreadable` (refused: no client sends one).
 */
export function bodyForm(method: string, contentType: string | undefined): BodyForm {
  if (contentType === undefined) return 'none';
  if (/[^\t\x20-\x7e]/.test(contentType)) return 'unreadable';
  const media = contentType.split(';', 1)[0]!.trim().toLowerCase();
  // Multipart is parsed for every method; an urlencoded body only for these (Go's ParseForm).
  if (media === 'multipart/form-data') return 'multipart';
  if (media === 'application/x-www-form-urlencoded' && (method === 'POST' || method === 'PUT' || method === 'PATCH')) return 'urlencoded';
  return 'none';
}

/** The parameters as the registry reads them: an urlencoded body's fields first, then the query's. */
export function registryParams(rawQuery: string, formBody: Buffer | null = null): RegistryParams {
  const query = parseGoQuery(rawQuery);
  const body = formBody === null ? new Map<string, string[]>() : parseGoQuery(formBody.toString('latin1'));
  const all = (name: string): string[] => [...(body.get(name) ?? []), ...(query.get(name) ?? [])];
  const conflict = REGISTRY_PARAMETERS.find((name) => new Set(all(name)).size > 1) ?? null;
  return { value: (name) => all(name)[0], all, conflict };
}
