/**
 * The one decision of who may do what, asked by the token service (what to put in a token) and
 * by the gate (whether this request may pass), so that a rule means the same on both sides.
 */
import type { Access } from '../registry/scope.js';
import type { GroupSource } from './groups.js';
import { AccessRules, type Caller, type Decision } from './rules.js';

export class AccessPolicy {
  constructor(
    private rules: AccessRules,
    private groups: GroupSource,
    /** May anonymous callers list repositories (`auth.publicCatalog`)? */
    private publicCatalog: boolean,
  ) {}

  /** SIGHUP: every decision from now on uses these (a decision in progress keeps what it read). */
  replace(rules: AccessRules, groups: GroupSource, publicCatalog: boolean): void {
    this.rules = rules;
    this.groups = groups;
    this.publicCatalog = publicCatalog;
  }

  /** `sourceGroups`: what the identity's source (a directory) says, added to the configured groups. */
  caller(user: string | null, sourceGroups: readonly string[] = []): Caller {
    const configured = this.groups.groupsOf(user);
    return { user, groups: sourceGroups.length ? new Set([...configured, ...sourceGroups]) : configured };
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
    return this.rules.allowedActions(caller, access);
  }

  decide(caller: Caller, access: Access): Decision {
    if (access.type === 'registry') {
      return this.mayList(caller) ? { ok: true, rule: null } : { ok: false, rule: null, reason: 'anonymous callers may not list repositories (auth.publicCatalog)' };
    }
    return this.rules.decide(caller, access);
  }

  mayPull(caller: Caller, repository: string): boolean {
    return this.rules.decide(caller, { type: 'repository', name: repository, actions: ['pull'] }).ok;
  }

  mayDoEverything(caller: Caller): boolean {
    return this.rules.mayDoEverything(caller);
  }

  mayPullEverything(caller: Caller): boolean {
    return this.rules.mayPullEverything(caller);
  }
}
