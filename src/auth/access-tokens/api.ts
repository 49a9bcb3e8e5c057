/**
 * /gate/v1/tokens — people manage their own access tokens over HTTPS with their own password:
 *   GET    /gate/v1/tokens          their tokens (an admin: everyone's), never a secret
 *   POST   /gate/v1/tokens          {"name","scopes":["team-a/**:pull"],"expires":"30d"[,"owner"]}
 *                                   → 201 with the secret, shown this once
 *   DELETE /gate/v1/tokens/NAME     → 204
 * Who asks was settled by the pipeline (a password login, never a token: a leaked token must
 * not be able to mint more).
 */
import type { RegistryErrorCode } from '../../registry/errors.js';
import type { Actor, TokenManager } from './manage.js';

export const TOKENS_PATH = '/gate/v1/tokens';
export const API_BODY_LIMIT = 16 * 1024;

export type ApiAnswer =
  | { ok: true; status: number; body: object | null; audit?: { action: 'token-create' | 'token-revoke'; token: string; owner: string } }
  | { ok: false; code: RegistryErrorCode; message: string; headers?: Record<string, string> };

export function isTokensPath(pathname: string): boolean {
  return pathname === TOKENS_PATH || pathname.startsWith(`${TOKENS_PATH}/`);
}

export async function answerTokensApi(method: string, pathname: string, body: Buffer | null, actor: Actor, manager: TokenManager): Promise<ApiAnswer> {
  if (pathname === TOKENS_PATH) {
    if (method === 'GET' || method === 'HEAD') return { ok: true, status: 200, body: { tokens: await manager.list(actor) } };
    if (method !== 'POST') return { ok: false, code: 'UNSUPPORTED', message: `use GET or POST ${TOKENS_PATH}`, headers: { allow: 'GET, HEAD, POST' } };
    const request = readCreate(body);
    if ('problem' in request) return { ok: false, code: 'BAD_REQUEST', message: request.problem };
    const created = await manager.create(actor, request);
    if (!created.ok) return created;
    return { ok: true, status: 201, body: created.value, audit: { action: 'token-create', token: created.value.name, owner: created.value.owner } };
  }
  let name: string;
  try {
    name = decodeURIComponent(pathname.slice(TOKENS_PATH.length + 1));
  } catch {
    return { ok: false, code: 'NOT_FOUND', message: 'no such token' };
  }
  if (method !== 'DELETE') return { ok: false, code: 'UNSUPPORTED', message: `use DELETE ${TOKENS_PATH}/NAME`, headers: { allow: 'DELETE' } };
  const revoked = await manager.revoke(actor, name);
  if (!revoked.ok) return revoked;
  return { ok: true, status: 204, body: null, audit: { action: 'token-revoke', token: revoked.value.name, owner: revoked.value.owner } };
}

function readCreate(body: Buffer | null): { name: string; scopes: string[]; expires: string; owner?: string } | { problem: string } {
  let value: unknown;
  try {
    value = JSON.parse(body?.toString('utf8') ?? '');
  } catch {
    return { problem: 'the body must be JSON: {"name":"ci","scopes":["team-a/**:pull"],"expires":"30d"}' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { problem: 'the body must be a JSON object' };
  const { name, scopes, expires, owner, ...rest } = value as Record<string, unknown>;
  const extra = Object.keys(rest);
  if (extra.length) return { problem: `unknown field "${extra[0]!.slice(0, 40)}" (expected name, scopes, expires, owner)` };
  if (typeof name !== 'string') return { problem: '"name" must be a string' };
  if (!Array.isArray(scopes) || !scopes.every((s) => typeof s === 'string')) return { problem: '"scopes" must be a list of strings like "team-a/**:pull,push"' };
  if (typeof expires !== 'string') return { problem: '"expires" must be a string like "30d" or "2027-06-30" (expiry is required)' };
  if (owner !== undefined && typeof owner !== 'string') return { problem: '"owner" must be a string' };
  return { name, scopes: scopes as string[], expires, ...(owner !== undefined ? { owner } : {}) };
}
