/**
 * Just enough of a TLS ClientHello parser to learn the SNI name and the offered ALPN protocols
 * before the handshake starts (RFC 8446 §4.1.2, RFC 6066 §3, RFC 7301 §3.1). Pure: it is fed
 * every byte received so far and says how many it needs before another look can make progress,
 * which keeps the work linear however finely a peer splits its bytes.
 */

export interface ClientHello {
  serverName: string | null;
  alpn: string[];
}

export type ClientHelloResult =
  | { status: 'complete'; hello: ClientHello }
  | { status: 'incomplete'; needed: number }
  | { status: 'invalid'; reason: string };

const RECORD_HEADER = 5;
const CONTENT_TYPE_HANDSHAKE = 22;
const HANDSHAKE_CLIENT_HELLO = 1;
// RFC 8446 §5.1: a plaintext record carries at most 2^14 bytes.
const MAX_RECORD_PAYLOAD = 16384;
// Real clients send their ClientHello in one or two records; thousands of tiny ones are an attack.
const MAX_RECORDS = 64;
const EXT_SERVER_NAME = 0;
const EXT_ALPN = 16;

/** Real ClientHellos are a few KiB (post-quantum key shares included); anything larger is abuse. */
export const MAX_CLIENT_HELLO = 32 * 1024;

class Malformed extends Error {}

export function parseClientHello(data: Buffer): ClientHelloResult {
  try {
    const message = reassembleHandshake(data);
    if (typeof message === 'number') return { status: 'incomplete', needed: message };
    return { status: 'complete', hello: parseBody(message) };
  } catch (err) {
    if (err instanceof Malformed) return { status: 'invalid', reason: err.message };
    throw err;
  }
}

/**
 * The ClientHello may be split over several records; returns its body once all of it is here,
 * else the total byte count worth waiting for.
 */
function reassembleHandshake(data: Buffer): Buffer | number {
  const fragments: Buffer[] = [];
  let gathered = 0;
  let expected: number | null = null;
  let offset = 0;
  while (expected === null || gathered < expected + 4) {
    if (fragments.length === MAX_RECORDS) throw new Malformed('ClientHello split over too many records');
    if (data.length < offset + RECORD_HEADER) {
      checkPrefix(data, offset);
      return offset + RECORD_HEADER;
    }
    if (data[offset] !== CONTENT_TYPE_HANDSHAKE) throw new Malformed('not a TLS handshake record');
    if (data[offset + 1] !== 3) throw new Malformed('unknown TLS record version');
    const length = data.readUInt16BE(offset + 3);
    if (length === 0 || length > MAX_RECORD_PAYLOAD) throw new Malformed('bad TLS record length');
    const end = offset + RECORD_HEADER + length;
    // A partial record still counts for the handshake header, so that a bogus length is refused early.
    const fragment = data.subarray(offset + RECORD_HEADER, Math.min(end, data.length));
    fragments.push(fragment);
    gathered += fragment.length;
    if (expected === null && gathered >= 4) expected = handshakeLength(Buffer.concat(fragments));
    if (data.length < end) return end;
    offset = end;
  }
  return Buffer.concat(fragments).subarray(4, 4 + expected);
}

function handshakeLength(head: Buffer): number {
  if (head[0] !== HANDSHAKE_CLIENT_HELLO) throw new Malformed('first handshake message is not a ClientHello');
  const length = head.readUIntBE(1, 3);
  if (length > MAX_CLIENT_HELLO) throw new Malformed('ClientHello too large');
  return length;
}

/** Rejects garbage from its first bytes instead of waiting for a full record header. */
function checkPrefix(data: Buffer, offset: number): void {
  if (data.length > offset && data[offset] !== CONTENT_TYPE_HANDSHAKE) {
    throw new Malformed('not a TLS handshake record');
  }
  if (data.length > offset + 1 && data[offset + 1] !== 3) throw new Malformed('unknown TLS record version');
}

class Reader {
  private offset = 0;
  constructor(private readonly buf: Buffer) {}

  get remaining(): number {
    return this.buf.length - this.offset;
  }

  u8(): number {
    this.need(1);
    return this.buf[this.offset++]!;
  }

  u16(): number {
    this.need(2);
    const value = this.buf.readUInt16BE(this.offset);
    this.offset += 2;
    return value;
  }

  bytes(length: number): Buffer {
    this.need(length);
    const slice = this.buf.subarray(this.offset, this.offset + length);
    this.offset += length;
    return slice;
  }

  vector8(): Reader {
    return new Reader(this.bytes(this.u8()));
  }

  vector16(): Reader {
    return new Reader(this.bytes(this.u16()));
  }

  private need(length: number): void {
    if (this.offset + length > this.buf.length) throw new Malformed('ClientHello field overruns its length');
  }
}

function parseBody(body: Buffer): ClientHello {
  const reader = new Reader(body);
  reader.bytes(2 + 32); // legacy_version, random
  reader.vector8(); // legacy_session_id
  reader.vector16(); // cipher_suites
  reader.vector8(); // legacy_compression_methods
  const hello: ClientHello = { serverName: null, alpn: [] };
  if (reader.remaining === 0) return hello; // extensions are optional before TLS 1.3
  const extensions = reader.vector16();
  while (extensions.remaining > 0) {
    const type = extensions.u16();
    const data = extensions.vector16();
    if (type === EXT_SERVER_NAME) hello.serverName = parseServerName(data);
    else if (type === EXT_ALPN) hello.alpn = parseAlpn(data);
  }
  return hello;
}

function parseServerName(data: Reader): string | null {
  const list = data.vector16();
  while (list.remaining > 0) {
    const nameType = list.u8();
    const name = list.vector16();
    if (nameType === 0) return name.bytes(name.remaining).toString('ascii').toLowerCase();
  }
  return null;
}

function parseAlpn(data: Reader): string[] {
  const list = data.vector16();
  const protocols: string[] = [];
  while (list.remaining > 0) {
    const protocol = list.vector8();
    protocols.push(protocol.bytes(protocol.remaining).toString('latin1'));
  }
  return protocols;
}
