/**
 * What a decision of the access rules costs with 1,000 rules, measured in this process (the
 * proxy makes one per request and per token scope): caller lookup (groups) plus the decision.
 */
import { AccessPolicy } from '../../src/access/policy.js';
import { AccessRules } from '../../src/access/rules.js';
import type { Access } from '../../src/registry/scope.js';
import type { AccessRuleConfig } from '../../src/config/types.js';

export interface RuleCost {
  label: string;
  rules: number;
  usPerDecision: number;
}

const TEAMS = 998;
const DECISIONS = 200_000;

function teamRules(): AccessRuleConfig[] {
  const rules: AccessRuleConfig[] = [{ who: ['group:admins'], repositories: ['**'], actions: ['*'] }];
  for (let i = 0; i < TEAMS; i++) rules.push({ who: [`group:team-${i}`], repositories: [`team-${i}/**`], actions: ['pull', 'push', 'delete'] });
  rules.push({ who: ['*'], repositories: ['public/**'], actions: ['pull'] });
  return rules;
}

/**
 * The same number of rules, none with a plain first component and each naming every user: the
 * index cannot help, and every rule before the matching one tests its pattern.
 */
function wildcardRules(): AccessRuleConfig[] {
  const rules: AccessRuleConfig[] = [{ who: ['group:admins'], repositories: ['**'], actions: ['*'] }];
  for (let i = 0; i < TEAMS; i++) rules.push({ who: ['authenticated'], repositories: [`*/svc-${i}-*`], actions: ['pull', 'push'] });
  rules.push({ who: ['*'], repositories: ['*/public-*'], actions: ['pull'] });
  return rules;
}

function measure(label: string, rules: AccessRuleConfig[], requests: { user: string; access: Access }[]): RuleCost {
  const groups = new Map(Array.from({ length: TEAMS }, (_, i) => [`user-${i}`, new Set([`team-${i}`])]));
  const policy = new AccessPolicy(new AccessRules(rules), { groupsOf: (user) => (user === null ? new Set() : (groups.get(user) ?? new Set())) }, false);
  let allowed = 0;
  const once = (n: number): void => {
    for (let i = 0; i < n; i++) {
      const r = requests[i % requests.length]!;
      if (policy.decide(policy.caller(r.user), r.access).ok) allowed++;
    }
  };
  once(DECISIONS / 10);
  const started = process.hrtime.bigint();
  once(DECISIONS);
  const us = Number(process.hrtime.bigint() - started) / 1e3 / DECISIONS;
  if (allowed === 0) throw new Error(`${label}: no request was allowed; the bench measures nothing`);
  return { label, rules: rules.length, usPerDecision: us };
}

export function measureRuleCost(): RuleCost[] {
  const requests: { user: string; access: Access }[] = [];
  for (let i = 0; i < 1000; i++) {
    const user = `user-${(i * 7919) % TEAMS}`;
    const team = user.replace('user-', 'team-');
    const kind = i % 4;
    const name = kind === 0 ? `${team}/app-${i}` : kind === 1 ? `public/base-${i % 10}` : kind === 2 ? `team-${(i * 31) % TEAMS}/other` : `${team}/deep/er/lib`;
    requests.push({ user, access: { type: 'repository', name, actions: kind === 1 ? ['pull'] : ['pull', 'push'] } });
  }
  const wildcardRequests = requests.map((r, i) => ({
    user: r.user,
    access: { ...r.access, name: i % 2 ? `x/svc-${r.user.slice(5)}-api` : `x/public-${i % 10}` },
  }));
  return [
    measure('1,000 rules, per-team namespaces (team-N/**)', teamRules(), requests),
    measure('1,000 rules, every pattern starting with a wildcard (worst case)', wildcardRules(), wildcardRequests),
  ];
}
