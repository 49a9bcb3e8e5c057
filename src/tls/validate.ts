import { isIP } from 'node:net';
import type { TlsConfig } from '../config/types.js';

/**
 * Semantic checks of the `tls` section, as messages that name the key (types and enums are
 * checked by the config loader before this). Only the section of the selected mode is checked:
 * leftovers of another mode must not block a start.
 */
export function validateTlsConfig(tls: TlsConfig): string[] {
  switch (tls.mode) {
    case 'off':
      return [];
    case 'files':
      return (['certFile', 'keyFile'] as const)
        .filter((key) => !tls[key])
        .map((key) => `tls.${key}: required when tls.mode is "files"`);
    case 'self-signed':
      return validateNames(tls.names);
    case 'acme':
      return validateAcme(tls.acme);
  }
}

function validateNames(names: string[]): string[] {
  if (names.length === 0) return ['tls.names: list at least one host name or IP address for the self-signed certificate'];
  return names.flatMap((name, i) =>
    isIP(name) || isDnsName(name.replace(/^\*\./, ''))
      ? []
      : [`tls.names[${i}]: "${name}" is neither a host name nor an IP address`],
  );
}

function validateAcme(acme: TlsConfig['acme']): string[] {
  const problems: string[] = [];
  if (acme.domains.length === 0) problems.push('tls.acme.domains: list at least one domain when tls.mode is "acme"');
  const seen = new Set<string>();
  acme.domains.forEach((domain, i) => {
    const key = `tls.acme.domains[${i}]`;
    if (domain.startsWith('*.')) {
      problems.push(`${key}: "${domain}" is a wildcard; wildcards need the DNS-01 challenge, which registry-gate does not support — list each host name`);
    } else if (isIP(domain)) {
      problems.push(`${key}: "${domain}" is an IP address; ACME certificates here are for DNS names (use tls.mode "self-signed" or "files" for IPs)`);
    } else if (!isDnsName(domain) || !domain.includes('.')) {
      problems.push(`${key}: "${domain}" is not a fully qualified DNS name (e.g. "registry.example.com")`);
    } else if (seen.has(domain.toLowerCase())) {
      problems.push(`${key}: "${domain}" is listed twice`);
    }
    seen.add(domain.toLowerCase());
  });
  problems.push(...validateDirectoryUrl(acme.directoryUrl));
  if (acme.email !== null && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(acme.email)) {
    problems.push(`tls.acme.email: "${acme.email}" is not an e-mail address`);
  }
  if (new Set(acme.challenges).size !== acme.challenges.length) problems.push('tls.acme.challenges: a challenge type is listed twice');
  if (acme.eab !== null) {
    if (!acme.eab.kid) problems.push('tls.acme.eab.kid: must not be empty');
    if (!/^[A-Za-z0-9_-]+={0,2}$/.test(acme.eab.hmacKey)) {
      problems.push('tls.acme.eab.hmacKey: must be the base64url-encoded key your CA issued');
    }
  }
  return problems;
}

function validateDirectoryUrl(value: string): string[] {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return [`tls.acme.directoryUrl: "${value}" is not a URL (or one of the shorthands "letsencrypt", "letsencrypt-staging")`];
  }
  // RFC 8555 §6.1: ACME runs over HTTPS only.
  return url.protocol === 'https:' ? [] : [`tls.acme.directoryUrl: must be an https:// URL, got "${url.protocol}"`];
}

function isDnsName(name: string): boolean {
  if (name.length === 0 || name.length > 253) return false;
  return name.split('.').every((label) => /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/.test(label));
}
