/**
 * The names this proxy answers for. The token realm, `service` and an upload's `Location` are
 * built from the request's `Host`: answered for any host, a client (or a page that makes a
 * browser send one) gets URLs that point elsewhere — a realm on an attacker's host collects the
 * next login. Where the config names the proxy (`tls.names` of a self-signed certificate, the ACME
 * domains, `auth.tokenRealm`), any other host is `421 Misdirected Request`.
 */
import type { Config } from '../config/types.js';
import { normalizeName } from '../tls/certificate.js';
import { hostName } from './client-view.js';

export const MISDIRECTED_MESSAGE = 'this proxy does not answer for that host name; use the name its certificate and token realm were made for';

/** The names the config gives the proxy; empty when it gives none (then every host is answered, and `config check` warns). */
export function knownNames(config: Config): string[] {
  const names: string[] = [];
  if (config.tls.mode === 'self-signed') names.push(...config.tls.names);
  if (config.tls.mode === 'acme') names.push(...config.tls.acme.domains);
  if (config.auth.tokenRealm !== null) names.push(new URL(config.auth.tokenRealm).hostname);
  return [...new Set(names.map(comparable))];
}

/** Whether a request's host (with or without port, IPv6 in brackets) is one of `names`; every host when `names` is empty. */
export function hostMatcher(names: string[]): (host: string) => boolean {
  if (names.length === 0) return () => true;
  const known = new Set(names);
  return (host) => {
    const name = hostName(host);
    return name !== null && known.has(comparable(name));
  };
}

/** Lower case, no brackets round IPv6, no trailing dot (`registry.example.com.` is the same name). */
function comparable(name: string): string {
  const bare = name.startsWith('[') && name.endsWith(']') ? name.slice(1, -1) : name;
  return normalizeName(bare.endsWith('.') ? bare.slice(0, -1) : bare);
}
