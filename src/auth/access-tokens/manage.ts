/**
 * Creating, listing and revoking access tokens — the one set of decisions behind both the CLI
 * (`registry-gate token …`, the operator: anyone's tokens) and /gate/v1/tokens (a person: their
 * own; a member of the tokens source's `adminGroup`: anyone's).
 */
import type { TokensSource } from '../sources/tokens.js';
import { nameProblem, newRecord, parseExpiry, parseScopes, viewOf, type TokenView } from './record.js';

/** Who asks: a person logged in with their password, or the operator at the CLI (`null` user). */
export interface Actor {
  user: string | null;
  groups: ReadonlySet<string>;
}

export type Managed<T> = { ok: true; value: T } | { ok: false; code: 'BAD_REQUEST' | 'DENIED' | 'NOT_FOUND' | 'CONFLICT' | 'SOURCE_UNAVAILABLE'; message: string };

export interface CreateRequest {
  name: string;
  owner?: string;
  scopes: string[];
  expires: string;
}

export class TokenManager {
  constructor(
    private readonly source: TokensSource,
    private readonly now: () => number = Date.now,
  ) {}

  private isAdmin(actor: Actor): boolean {
    return actor.user === null || (this.source.adminGroup !== null && actor.groups.has(this.source.adminGroup));
  }

  async create(actor: Actor, request: CreateRequest): Promise<Managed<TokenView & { secret: string }>> {
    const owner = request.owner ?? actor.user;
    if (owner === null || owner === '') return { ok: false, code: 'BAD_REQUEST', message: 'name the owner (--owner USER): a token acts for a person' };
    if (owner !== actor.user && !this.isAdmin(actor)) return { ok: false, code: 'DENIED', message: `you may create tokens for yourself only, not for "${owner}"` };
    const problem = nameProblem(request.name);
    if (problem) return { ok: false, code: 'BAD_REQUEST', message: problem };
    const scopes = parseScopes(request.scopes);
    if (!scopes.ok) return { ok: false, code: 'BAD_REQUEST', message: scopes.reason };
    const now = this.now();
    const expiry = parseExpiry(request.expires, now, this.source.maxDays);
    if (!expiry.ok) return { ok: false, code: 'BAD_REQUEST', message: expiry.reason };
    const found = await this.source.findOwner(owner);
    if (!found.ok) {
      if (found.reason === 'unavailable') return { ok: false, code: 'SOURCE_UNAVAILABLE', message: found.message };
      return { ok: false, code: 'BAD_REQUEST', message: `no identity source knows the owner "${owner}"` };
    }
    // A token named like a person would shadow them or be shadowed, depending on the sources' order.
    const namesPerson = await this.source.findOwner(request.name);
    if (!namesPerson.ok && namesPerson.reason === 'unavailable') return { ok: false, code: 'SOURCE_UNAVAILABLE', message: namesPerson.message };
    if (namesPerson.ok) return { ok: false, code: 'CONFLICT', message: `"${request.name}" is a user's name; choose another token name` };
    const { record, secret } = newRecord({ name: request.name, owner, scopes: scopes.scopes, expires: expiry.expires, createdBy: actor.user ?? 'cli', now });
    if (!(await this.source.store.create(record))) return { ok: false, code: 'CONFLICT', message: `a token named "${request.name}" exists; revoke it first or choose another name` };
    return { ok: true, value: { ...viewOf(record, null, now), secret } };
  }

  async list(actor: Actor): Promise<TokenView[]> {
    const now = this.now();
    const mine = this.source.store.all().filter((t) => this.isAdmin(actor) || t.owner === actor.user);
    return Promise.all(mine.map(async (t) => viewOf(t, await this.source.store.lastUsed(t.name).catch(() => null), now)));
  }

  /** Someone else's token is "not found" to a person: they learn nothing about it. */
  async revoke(actor: Actor, name: string): Promise<Managed<TokenView>> {
    const stored = this.source.store.get(name);
    if (!stored || (!this.isAdmin(actor) && stored.owner !== actor.user)) return { ok: false, code: 'NOT_FOUND', message: `no token "${name.slice(0, 80)}"${actor.user ? ' of yours' : ''}` };
    if (!(await this.source.store.revoke(name))) return { ok: false, code: 'NOT_FOUND', message: `no token "${name}"` };
    return { ok: true, value: viewOf(stored, null, this.now()) };
  }
}
