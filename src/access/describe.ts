import type { ClaimCondition } from './claims.js';
import type { AccessRuleConfig } from '../config/types.js';

/** One rule as `config check` and `access check` print it: `3. group:team-a → team-a/** : pull, push`. */
export function describeRule(rule: AccessRuleConfig, index: number): string {
  const actions = rule.actions.length ? rule.actions.join(', ') : '(nothing)';
  return `${index}. ${rule.who.join(', ')}${describeClaims(rule.claims)} → ${rule.repositories.join(', ')} : ${actions}${rule.comment ? `   # ${rule.comment}` : ''}`;
}

/** ` with ref=refs/heads/main, ref_protected=true` — the claim conditions of a rule or protected tag; empty without. */
export function describeClaims(claims: Readonly<Record<string, ClaimCondition>> | undefined): string {
  const entries = Object.entries(claims ?? {});
  if (entries.length === 0) return '';
  return ` with ${entries.map(([path, value]) => `${path}=${Array.isArray(value) ? value.join('|') : String(value)}`).join(', ')}`;
}
