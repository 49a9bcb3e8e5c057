import { isIP } from 'node:net';

export interface ListenAddress {
  host: string;
  port: number;
}

/** "0.0.0.0:443", "[::]:443", "localhost:8443" or a bare port. Returns an error sentence instead of throwing. */
export function parseListenAddress(text: string): ListenAddress | { error: string } {
  const bare = /^\d{1,5}$/.test(text);
  const match = bare ? null : /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text);
  if (!bare && !match) return { error: `expected "host:port" (IPv6 as "[::]:443"), got "${text}"` };
  const portText = bare ? text : match![3]!;
  const port = Number(portText);
  // 0 asks the system for a free port; the one it picked is logged at start.
  if (port > 65535) return { error: `port must be 0-65535, got ${portText}` };
  const v6 = match?.[1];
  if (v6 !== undefined && isIP(v6) !== 6) return { error: `"${v6}" is not an IPv6 address` };
  const host = v6 ?? match?.[2] ?? '';
  return { host: host === '' ? '0.0.0.0' : host, port };
}

/** `host:port` as a URL writes it: an IPv6 address in brackets. */
export function urlHostPort(address: ListenAddress): string {
  return `${address.host.includes(':') ? `[${address.host}]` : address.host}:${address.port}`;
}
