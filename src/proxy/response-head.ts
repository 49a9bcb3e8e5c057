/**
 * The head of an HTTP/1.x response from the registry, for the blob relay (blob-relay.ts).
 *
 * Deliberately narrow: it accepts what distribution sends for a blob GET (a status line, plain
 * header lines, a body framed by Content-Length) and calls everything else "unsupported", which
 * sends the request the general way (http-proxy-3 and node:http's parser). So this parser never
 * has to be right about an odd response, only about recognising that it is odd.
 */

export interface ResponseHead {
  status: number;
  /** Lower-case names, in the order received; repeated names keep every value. */
  headers: [name: string, value: string][];
  /** Bytes of body that follow the head (0 for 204 and 304). */
  bodyLength: number;
  /** The registry lets the connection be used for another request. */
  keepAlive: boolean;
  /** Bytes taken by the status line, the headers and the blank line. */
  headLength: number;
}

export type HeadResult = ResponseHead | 'incomplete' | 'unsupported';

/** A response head this long without its blank line is not distribution's. */
export const MAX_HEAD_BYTES = 32 * 1024;

const STATUS_LINE = /^HTTP\/1\.([01]) ([2-5]\d\d)(?: [\t\x20-\x7e\x80-\xff]*)?$/;
/** RFC 9110 token: what a header name may be. */
export const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** RFC 9110 field-value characters; node:http refuses to send anything else. */
export const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const DIGITS = /^\d{1,15}$/;
const HEAD_END = Buffer.from('\r\n\r\n');

export function parseResponseHead(bytes: Buffer): HeadResult {
  const end = bytes.indexOf(HEAD_END);
  if (end === -1) return bytes.length > MAX_HEAD_BYTES ? 'unsupported' : 'incomplete';
  if (end > MAX_HEAD_BYTES) return 'unsupported';
  const lines = bytes.toString('latin1', 0, end).split('\r\n');
  const statusLine = STATUS_LINE.exec(lines[0]!);
  if (!statusLine) return 'unsupported';
  const status = Number(statusLine[2]);

  const headers: [string, string][] = [];
  let contentLength: string | null = null;
  let connection = '';
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(':');
    if (colon <= 0) return 'unsupported';
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    // A bare CR or LF inside a line, obs-fold, or a space before the colon all land here.
    if (!TOKEN.test(name) || !FIELD_VALUE.test(value)) return 'unsupported';
    if (name === 'transfer-encoding') return 'unsupported';
    if (name === 'content-length') {
      if (!DIGITS.test(value) || (contentLength !== null && contentLength !== value)) return 'unsupported';
      contentLength = value;
    }
    if (name === 'connection') connection += `,${value.toLowerCase()}`;
    headers.push([name, value]);
  }

  const bodyless = status === 204 || status === 304;
  if (!bodyless && contentLength === null) return 'unsupported';
  const tokens = connection.split(',').map((t) => t.trim());
  const keepAlive = statusLine[1] === '1' ? !tokens.includes('close') : tokens.includes('keep-alive');
  return { status, headers, bodyLength: bodyless ? 0 : Number(contentLength), keepAlive, headLength: end + HEAD_END.length };
}
