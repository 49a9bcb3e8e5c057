/**
 * The htpasswd file as an identity source: the user table of auth/users.ts, which keeps the file
 * current and checks bcrypt in the worker pool (an unknown name costs a check against a dummy
 * hash, so timing does not tell which names exist).
 */
import type { UserStore } from '../users.js';
import type { Authentication, IdentitySource } from './source.js';

export const HTPASSWD_CACHE_MS = 60_000;

export class HtpasswdSource implements IdentitySource {
  constructor(
    readonly store: UserStore,
    readonly cacheMs = HTPASSWD_CACHE_MS,
    readonly name = 'htpasswd',
  ) {}

  async authenticate(user: string, password: string, client: string): Promise<Authentication> {
    const outcome = await this.store.check(user, password, client);
    if (outcome.ok) return { ok: true, identity: { subject: user, source: this.name, groups: [], stamp: outcome.stamp } };
    return { ok: false, reason: outcome.known ? 'invalid' : 'unknown', message: 'invalid username or password' };
  }

  async lookup(user: string): Promise<Authentication> {
    const stamp = this.store.stamp(user);
    if (stamp === null) return { ok: false, reason: 'unknown', message: `no user "${user}" in the htpasswd file` };
    return { ok: true, identity: { subject: user, source: this.name, groups: [], stamp } };
  }

  reload(): Promise<void> {
    return this.store.reload();
  }

  currentStamp(subject: string): string | null {
    return this.store.stamp(subject);
  }

  degraded(): string[] {
    return [];
  }

  close(): Promise<void> {
    return this.store.close();
  }
}
