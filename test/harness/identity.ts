import type { Authentication, IdentitySource } from '../../src/auth/sources/source.js';

export interface TableSource {
  source: IdentitySource;
  /** Real checks made (what a guessing loop wants). */
  checks: { count: number };
}

/**
 * An identity source over a user → password table, for table tests of the chain, the gate and the
 * token endpoint. `stamp` is what tokens remember (default `stamp-of-<password>`); `answer`
 * replaces every check (an outage, a saturated pool).
 */
export function tableSource(
  passwords: Record<string, string>,
  opts: { name?: string; groups?: Record<string, string[]>; answer?: () => Promise<Authentication> } = {},
): TableSource {
  const name = opts.name ?? 'htpasswd';
  const checks = { count: 0 };
  const stamp = (user: string) => (Object.hasOwn(passwords, user) ? `stamp-of-${passwords[user]}` : null);
  const source: IdentitySource = {
    name,
    cacheMs: 60_000,
    async authenticate(user, password) {
      checks.count++;
      if (opts.answer) return opts.answer();
      if (!Object.hasOwn(passwords, user)) return { ok: false, reason: 'unknown', message: 'invalid username or password' };
      if (passwords[user] !== password) return { ok: false, reason: 'invalid', message: 'invalid username or password' };
      return { ok: true, identity: { subject: user, source: name, groups: opts.groups?.[user] ?? [], stamp: stamp(user) } };
    },
    async lookup(user) {
      if (opts.answer) return opts.answer();
      if (!Object.hasOwn(passwords, user)) return { ok: false, reason: 'unknown', message: `no user "${user}"` };
      return { ok: true, identity: { subject: user, source: name, groups: opts.groups?.[user] ?? [], stamp: stamp(user) } };
    },
    currentStamp: stamp,
    degraded: () => [],
    close: async () => {},
  };
  return { source, checks };
}
