import type { AccessRuleConfig } from '../config/types.js';

/** One rule as `config check` and `access check` print it: `3. group:team-a → team-a/** : pull, push`. */
export function describeRule(rule: AccessRuleConfig, index: number): string {
  const actions = rule.actions.length ? rule.actions.join(', ') : '(nothing)';
  return `${index}. ${rule.who.join(', ')} → ${rule.repositories.join(', ')} : ${actions}${rule.comment ? `   # ${rule.comment}` : ''}`;
}
