import type { ServerResponse } from 'node:http';
import { API_VERSION, API_VERSION_HEADER } from './headers.js';

export type RegistryErrorCode =
  | 'UNAUTHORIZED'
  | 'DENIED'
  | 'NAME_INVALID'
  | 'NAME_UNKNOWN'
  | 'NOT_FOUND'
  | 'UNSUPPORTED'
  | 'TOOMANYREQUESTS'
  | 'UNAVAILABLE'
  | 'BAD_REQUEST'
  | 'UNKNOWN';

/**
 * The registry's own error shape. Clients print `message`; they print "invalid character '<'"
 * for an HTML body and "unexpected end of JSON input" for an empty 401.
 */
export function registryErrorBody(code: RegistryErrorCode, message: string, detail: unknown = null): string {
  return JSON.stringify({ errors: [{ code, message, detail }] });
}

/** Answers with a registry-style JSON error, unless the response is already under way. */
export function sendRegistryError(
  res: ServerResponse,
  status: number,
  code: RegistryErrorCode,
  message: string,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = registryErrorBody(code, message);
  res.writeHead(status, {
    ...headers,
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    [API_VERSION_HEADER]: API_VERSION,
  });
  res.end(body);
}
