import type { ServerResponse } from 'node:http';
import { API_VERSION, API_VERSION_HEADER } from './api-version.js';

/**
 * Every error code the proxy answers with, bound to its one HTTP status (distribution keeps the
 * same binding in `registry/api/errcode/register.go`). A situation that needs another status
 * needs another code, so a code always means the same thing on the wire.
 */
export const ERROR_STATUS = {
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  DENIED: 403,
  NOT_FOUND: 404,
  MANIFEST_UNKNOWN: 404,
  DIGEST_INVALID: 400,
  UNSUPPORTED: 405,
  /** A name that is taken (an access token's). */
  CONFLICT: 409,
  TOO_LARGE: 413,
  /** A Host this proxy does not answer for (distribution has no code of its own for this). */
  MISDIRECTED: 421,
  TOOMANYREQUESTS: 429,
  UNKNOWN: 500,
  UNAVAILABLE: 502,
  /** An identity source (a directory) cannot answer: distribution's own UNAVAILABLE status, 503. */
  SOURCE_UNAVAILABLE: 503,
  /** The proxy is stopping and takes no new work (distribution has no code of its own for this). */
  SHUTTING_DOWN: 503,
  GATEWAY_TIMEOUT: 504,
} as const;

export type RegistryErrorCode = keyof typeof ERROR_STATUS;

export function statusOf(code: RegistryErrorCode): number {
  return ERROR_STATUS[code];
}

/**
 * The registry's own error shape. Clients print `message`; they print "invalid character '<'"
 * for an HTML body and "unexpected end of JSON input" for an empty 401.
 */
export function registryErrorBody(code: RegistryErrorCode, message: string, detail: unknown = null): string {
  return JSON.stringify({ errors: [{ code: WIRE_CODE[code] ?? code, message, detail }] });
}

/** Codes that differ from their wire code only by the status they come with. */
const WIRE_CODE: Partial<Record<RegistryErrorCode, string>> = { SOURCE_UNAVAILABLE: 'UNAVAILABLE' };

/** Answers with a registry-style JSON error, unless the response is already under way. */
export function sendRegistryError(res: ServerResponse, code: RegistryErrorCode, message: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = registryErrorBody(code, message);
  res.writeHead(statusOf(code), {
    ...headers,
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    [API_VERSION_HEADER]: API_VERSION,
  });
  res.end(body);
}
