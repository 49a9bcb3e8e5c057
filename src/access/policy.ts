/**
 * The one decision of who may do what, asked by the token service (what to put in a token) and
 * by the gate (whether this request may pass), so that a rule means the same on both sides.
 */
import type { Access } from '../registry/scope.js';
import { pickClaims, type Claims } from './claims.js';
import type { GroupSource } from './groups.js';
import { AccessRules, type Caller, type Decision } from './rules.js';
import type { ScopeLimit } from './token-scope.js';

export class AccessPolicy {
  constructor(
    private rules: AccessRules,
    private groups: GroupSource,
    /** May anonymous callers list repositories (`auth.publicCatalog`)? */
    private publicCatalog: boolean,
    /** Claims read elsewhere (protected tags), carried in registry tokens besides those the rules read. */
    private otherClaimPaths: readonly string[] = [],
  ) {}

  /** SIGHUP: every decision from now on uses these (a decision in progress keeps what it read). */
  replace(rules: AccessRules, groups: GroupSource, publicCatalog: boolean, otherClaimPaths: readonly string[] = []): void {
    this.rules = rules;
    this.groups = groups;
    this.publicCatalog = publicCatalog;
    this.otherClaimPaths = otherClaimPaths;
  }

  /** What a registry token carries of an ID token's claims: only what the rules and protected tags read. */
  carriedClaims(claims: Claims): Record<string, unknown> {
    return pickClaims(claims, new Set([...this.rules.claimPaths(), ...this.otherClaimPaths]));
  }

  /**
   * `sourceGroups`: what the identity's source (a directory) says, added to the configured groups.
   * `token`: the access token acting for `user`, which bounds every answer below.
   * `oidc`: the OIDC source that verified `user` and the ID token's claims.
   */
  caller(user: string | null, sourceGroups: readonly string[] = [], token?: { name: string; limit: ScopeLimit }, oidc?: { issuer: string; claims: Claims }): Caller {
    const configured = this.groups.groupsOf(user);
    const caller: Caller = { user, groups: sourceGroups.length ? new Set([...configured, ...sourceGroups]) : configured };
    if (token) caller.token = token;
    if (oidc) {
      caller.issuer = oidc.issuer;
      caller.claims = oidc.claims;
    }
    return caller;
  }

  /**
   * Listing the catalog is allowed to every user and, with `publicCatalog`, to anonymous callers;
   * what the list then shows is filtered by pull (pipeline, catalog).
   */
  private mayList(caller: Caller): boolean {
    return caller.user !== null || this.publicCatalog;
  }

  /** The asked actions on `access` that the caller holds, in the asked order (what a token gets). */
  allowed(caller: Caller, access: Access): string[] {
    if (access.type === 'registry' && access.name === 'catalog') return this.mayList(caller) ? [...new Set(access.actions)] : [];
    const allowed = this.rules.allowedActions(caller, access);
    const limit = caller.token?.limit;
    return limit ? allowed.filter((action) => limit.allows(access.name, action, caller.user)) : allowed;
  }

  decide(caller: Caller, access: Access): Decision {
    if (access.type === 'registry') {
      return this.mayList(caller) ? { ok: true, rule: null } : { ok: false, rule: null, reason: 'anonymous callers may not list repositories (auth.publicCatalog)' };
    }
    const decision = this.rules.decide(caller, access);
    const token = caller.token;
    if (!decision.ok || !token) return decision;
    const beyond = access.actions.filter((action) => !token.limit.allows(access.name, action, caller.user));
    if (beyond.length === 0) return decision;
    return { ok: false, rule: decision.rule, reason: `access token "${token.name}" is limited to ${token.limit.describe()}` };
  }

  mayPull(caller: Caller, repository: string): boolean {
    return this.decide(caller, { type: 'repository', name: repository, actions: ['pull'] }).ok;
  }

  mayDoEverything(caller: Caller): boolean {
    return this.rules.mayDoEverything(caller) && (caller.token?.limit.everything ?? true);
  }

  mayPullEverything(caller: Caller): boolean {
    return this.rules.mayPullEverything(caller) && (caller.token?.limit.pullsEverything ?? true);
  }
}
