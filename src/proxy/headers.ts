import type { IncomingHttpHeaders } from 'node:http';
import type { ClientView } from './client-view.js';

/**
 * Headers that must never reach the registry as the client sent them:
 * - credentials: the registry runs without auth behind us and must not see passwords or tokens;
 * - forwarding headers: the registry builds upload Location URLs from them (Forwarded first,
 *   then X-Forwarded-Proto + X-Forwarded-Host), so an untrusted client could point them anywhere;
 * - expect: Node has already answered "100 Continue" to the client, and a forwarded Expect makes
 *   http-proxy skip its proxyReq event, on which the upstream timeout hangs.
 */
const ALWAYS_DROPPED = ['authorization', 'proxy-authorization', 'expect', 'forwarded', 'x-real-ip', 'x-forwarded-port', 'x-forwarded-prefix'];
const REPLACED = ['x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-for'];
/** Hop-by-hop (RFC 9110 §7.6.1): they describe one connection, never the message. */
export const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade'];

/** Rewrites the inbound headers in place, before http-proxy copies them to the upstream request. */
export function prepareUpstreamHeaders(headers: IncomingHttpHeaders, view: ClientView): void {
  for (const name of listedInConnection(headers.connection)) {
    if (name !== 'transfer-encoding' && name !== 'content-length') delete headers[name];
  }
  // A client's `Connection: close` must not close our pooled upstream connection.
  for (const name of HOP_BY_HOP) delete headers[name];
  for (const name of ALWAYS_DROPPED) delete headers[name];
  for (const name of REPLACED) delete headers[name];
  headers['x-forwarded-proto'] = view.scheme;
  headers['x-forwarded-host'] = view.host;
  headers['x-forwarded-for'] = view.forwardedFor;
}

function listedInConnection(value: string | undefined): string[] {
  return value ? value.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean) : [];
}
