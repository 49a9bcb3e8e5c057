/**
 * Who may do what: the `access` rules, ordered, first match wins.
 *
 * A rule matches a request when it names the caller (`who`) and the repository (`repositories`);
 * its `actions` are then everything the caller may do there — later rules are not consulted, so
 * a rule with `"actions": []` shuts a repository for those it names. A repository that no rule
 * matches is closed. Without an `access` key the auth mode supplies the rules (`rulesForMode`),
 * which are exactly the behaviour of the modes before rules existed.
 *
 * Evaluation is on every request and every token, so rules are indexed by the first component of
 * their patterns: a name is only tested against rules that can match its head.
 */
import type { AccessRuleConfig, AuthMode } from '../config/types.js';
import type { Access } from '../registry/scope.js';
import { compileConditions, type Claims, type Conditions } from './claims.js';
import { compileGlob, type Glob } from './glob.js';
import type { ScopeLimit } from './token-scope.js';

export interface Caller {
  /** null: anonymous. */
  user: string | null;
  groups: ReadonlySet<string>;
  /** Set when an access token acts for `user`: rules may name it, and its scopes bound it (policy.ts). */
  token?: { name: string; limit: ScopeLimit };
  /** For a caller an OIDC source verified: that source's name (`oidc:NAME`) and the ID token's claims. */
  issuer?: string;
  claims?: Claims;
}

/** One result shape for every decision. `rule` is the 1-based position of the deciding rule, null when none matched. */
export type Decision =
  | { ok: true; rule: number | null }
  | { ok: false; rule: number | null; reason: string };

export interface Grant {
  /** The actions the caller holds, `*` included when the rule says `*`. */
  actions: readonly string[];
  rule: number | null;
}

interface Subjects {
  anyone: boolean;
  anonymous: boolean;
  authenticated: boolean;
  users: Set<string>;
  groups: Set<string>;
  tokens: Set<string>;
  issuers: Set<string>;
}

interface CompiledRule {
  index: number;
  who: Subjects;
  globs: Glob[];
  /** Conditions on the caller's ID token: a rule with them names only OIDC callers that meet them. */
  claims: Conditions | null;
  actions: readonly string[];
  everything: boolean;
}

const NO_GRANT: Grant = { actions: [], rule: null };

/** The rules each auth mode means when `access` is absent. */
export function rulesForMode(mode: AuthMode): AccessRuleConfig[] {
  switch (mode) {
    case 'none':
      return [{ who: ['*'], repositories: ['**'], actions: ['*'] }];
    case 'private':
      return [{ who: ['authenticated'], repositories: ['**'], actions: ['*'] }];
    case 'read-public':
      return [
        { who: ['authenticated'], repositories: ['**'], actions: ['*'] },
        { who: ['anonymous'], repositories: ['**'], actions: ['pull'] },
      ];
  }
}

/** Why a subject cannot be used, or null. */
export function subjectProblem(subject: string): string | null {
  if (subject === '*' || subject === 'anonymous' || subject === 'authenticated') return null;
  const m = /^(user|group|token|oidc):(.+)$/.exec(subject);
  if (!m) return `"${subject}" is not a subject (use "user:NAME", "group:NAME", "token:NAME", "oidc:SOURCE", "anonymous", "authenticated" or "*")`;
  if (/[\s:]/.test(m[2]!)) return `"${subject}": a ${m[1]} name has no spaces or colons`;
  return null;
}

export class AccessRules {
  readonly rules: readonly AccessRuleConfig[];
  private readonly compiled: CompiledRule[];
  private readonly byHead = new Map<string, number[]>();
  private readonly userHead: number[] = [];
  private readonly anyHead: number[] = [];

  constructor(rules: readonly AccessRuleConfig[]) {
    this.rules = rules;
    this.compiled = rules.map((rule, i) => compileRule(rule, i + 1));
    for (const rule of this.compiled) {
      const buckets = new Set<number[]>();
      for (const glob of rule.globs) {
        if (glob.userHead) buckets.add(this.userHead);
        else if (glob.literalHead === null) buckets.add(this.anyHead);
        else {
          let bucket = this.byHead.get(glob.literalHead);
          if (!bucket) this.byHead.set(glob.literalHead, (bucket = []));
          buckets.add(bucket);
        }
      }
      for (const bucket of buckets) bucket.push(rule.index);
    }
  }

  /** What the first rule naming the caller and the repository grants there. */
  grant(caller: Caller, repository: string): Grant {
    const slash = repository.indexOf('/');
    const head = slash === -1 ? repository : repository.slice(0, slash);
    const lists = [this.byHead.get(head), head === caller.user ? this.userHead : undefined, this.anyHead];
    const cursor = [0, 0, 0];
    for (;;) {
      // The three candidate lists are each in rule order; take the lowest next index of them.
      let pick = -1;
      let next = Infinity;
      for (let l = 0; l < 3; l++) {
        const list = lists[l];
        if (list && cursor[l]! < list.length && list[cursor[l]!]! < next) {
          next = list[cursor[l]!]!;
          pick = l;
        }
      }
      if (pick === -1) return NO_GRANT;
      cursor[pick]!++;
      const rule = this.compiled[next - 1]!;
      if (!namesWithClaims(rule, caller)) continue;
      if (rule.globs.some((g) => g.matches(repository, caller))) return { actions: rule.actions, rule: rule.index };
    }
  }

  /** The asked actions on `access` that the caller holds, in the asked order. */
  allowedActions(caller: Caller, access: Access): string[] {
    if (access.type !== 'repository') return [];
    const { actions } = this.grant(caller, access.name);
    if (actions.includes('*')) return [...new Set(access.actions)];
    return [...new Set(access.actions.filter((a) => actions.includes(a)))];
  }

  /** Every asked action on a repository, or the reason why not. */
  decide(caller: Caller, access: Access): Decision {
    const grant = this.grant(caller, access.name);
    const missing = access.actions.filter((a) => !grant.actions.includes('*') && !grant.actions.includes(a));
    if (missing.length === 0) return { ok: true, rule: grant.rule };
    const reason = grant.rule === null ? 'no rule gives access to it' : `rule ${grant.rule} does not allow ${missing.join(', ')}`;
    return { ok: false, rule: grant.rule, reason };
  }

  /**
   * The first rule that names the caller grants `*` on `**`: the caller may do anything, including
   * requests the route table cannot read (which are then forwarded as they came).
   */
  mayDoEverything(caller: Caller): boolean {
    const first = this.firstNaming(caller);
    return first !== undefined && first.everything;
  }

  /** The first rule that names the caller allows pull on `**`: nothing is hidden from it. */
  mayPullEverything(caller: Caller): boolean {
    const first = this.firstNaming(caller);
    return first !== undefined && first.globs.some((g) => g.matchesAll) && (first.actions.includes('*') || first.actions.includes('pull'));
  }

  private firstNaming(caller: Caller): CompiledRule | undefined {
    return this.compiled.find((rule) => namesWithClaims(rule, caller));
  }

  /** Every claim path the rules read (what a registry token must carry for the gate to ask them again). */
  claimPaths(): string[] {
    return this.compiled.flatMap((rule) => [...(rule.claims?.paths ?? []), ...rule.globs.flatMap((g) => g.claimPaths)]);
  }
}

function namesWithClaims(rule: CompiledRule, caller: Caller): boolean {
  if (!names(rule.who, caller)) return false;
  return rule.claims === null || (caller.claims !== undefined && rule.claims.check(caller.claims).ok);
}

function compileRule(rule: AccessRuleConfig, index: number): CompiledRule {
  const globs = rule.repositories.map(compileGlob);
  const claims = rule.claims ? compileConditions(rule.claims) : null;
  return { index, who: compileSubjects(rule.who), globs, claims, actions: rule.actions, everything: rule.actions.includes('*') && globs.some((g) => g.matchesAll) && claims === null };
}

/** Whether a caller is among the subjects listed (the `who` of rules and protected tags). */
export function subjectMatcher(list: readonly string[]): (caller: Caller) => boolean {
  const who = compileSubjects(list);
  return (caller) => names(who, caller);
}

function compileSubjects(list: readonly string[]): Subjects {
  const who: Subjects = { anyone: false, anonymous: false, authenticated: false, users: new Set(), groups: new Set(), tokens: new Set(), issuers: new Set() };
  for (const subject of list) {
    if (subject === '*') who.anyone = true;
    else if (subject === 'anonymous') who.anonymous = true;
    else if (subject === 'authenticated') who.authenticated = true;
    else if (subject.startsWith('user:')) who.users.add(subject.slice(5));
    else if (subject.startsWith('group:')) who.groups.add(subject.slice(6));
    else if (subject.startsWith('token:')) who.tokens.add(subject.slice(6));
    else if (subject.startsWith('oidc:')) who.issuers.add(subject.slice(5));
  }
  return who;
}

function names(who: Subjects, caller: Caller): boolean {
  if (who.anyone) return true;
  if (caller.user === null) return who.anonymous;
  if (who.authenticated || who.users.has(caller.user)) return true;
  if (caller.token && who.tokens.has(caller.token.name)) return true;
  if (caller.issuer !== undefined && who.issuers.has(caller.issuer)) return true;
  for (const group of caller.groups) if (who.groups.has(group)) return true;
  return false;
}
