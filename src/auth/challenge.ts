/**
 * The WWW-Authenticate challenge that drives a refused client's next attempt. (The JSON error
 * body that goes with it is in proxy/errors.ts.)
 */

export type BearerError = 'invalid_token' | 'insufficient_scope';

export interface BearerChallenge {
  realm: string;
  service: string;
  /** Scopes the request needs; sent space-separated in one parameter, as the token spec says. */
  scope?: string[];
  error?: BearerError;
}

/** A quoted-string (RFC 9110) that cannot break out of its quotes or out of the header line. */
export function quoteParameter(value: string): string {
  const safe = value.replace(/[\u0000-\u001f\u007f]/g, '').replace(/[\\"]/g, (c) => `\\${c}`);
  return `"${safe}"`;
}

export function bearerChallenge(challenge: BearerChallenge): string {
  const params = [`realm=${quoteParameter(challenge.realm)}`, `service=${quoteParameter(challenge.service)}`];
  if (challenge.scope && challenge.scope.length > 0) params.push(`scope=${quoteParameter(challenge.scope.join(' '))}`);
  if (challenge.error) params.push(`error=${quoteParameter(challenge.error)}`);
  return `Bearer ${params.join(',')}`;
}

export function basicChallenge(realm: string): string {
  return `Basic realm=${quoteParameter(realm)}`;
}
