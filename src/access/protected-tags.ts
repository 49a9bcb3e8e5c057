/**
 * Protected tags: a release tag that exists may not be pointed at another digest, nor its
 * manifest deleted, except by the subjects a protection lists (and who meet its `claims`). Re-pushing the digest a tag
 * already has is no move (CI re-runs do it) and stays allowed.
 */
import type { ProtectedTagConfig } from '../config/types.js';
import { compileConditions } from './claims.js';
import { compileGlob, type Glob } from './glob.js';
import { subjectMatcher, type Caller } from './rules.js';

interface CompiledProtection {
  index: number;
  repositories: Glob[];
  tags: Glob[];
  exempt: (caller: Caller) => boolean;
}

export class ProtectedTags {
  private list: CompiledProtection[] = [];
  private paths: string[] = [];

  constructor(config: readonly ProtectedTagConfig[]) {
    this.replace(config);
  }

  /** SIGHUP: the protections from now on. */
  replace(config: readonly ProtectedTagConfig[]): void {
    this.paths = config.flatMap((p) => Object.keys(p.claims ?? {}));
    this.list = config.map((p, i) => ({
      index: i + 1,
      repositories: p.repositories.map(compileGlob),
      tags: p.tags.map(compileGlob),
      exempt: exemption(p),
    }));
  }

  /** The claim paths the protections read. */
  claimPaths(): readonly string[] {
    return this.paths;
  }

  get empty(): boolean {
    return this.list.length === 0;
  }

  /** The protections that bind this caller in this repository (those it is not exempt from). */
  private binding(caller: Caller, repository: string): CompiledProtection[] {
    return this.list.filter((p) => p.repositories.some((g) => g.matches(repository, caller)) && !p.exempt(caller));
  }

  /** The 1-based number of the protection that stops this caller from moving `tag`, or null. */
  protecting(caller: Caller, repository: string, tag: string): number | null {
    return this.binding(caller, repository).find((p) => p.tags.some((g) => g.matches(tag, caller)))?.index ?? null;
  }

  /** Whether any tag of the repository is protected against this caller (a digest DELETE must then look). */
  guardsAny(caller: Caller, repository: string): boolean {
    return this.binding(caller, repository).length > 0;
  }
}

/** Who may move the tags: those `who` names and, when `claims` is set, only with an ID token that meets them ("from a protected ref"). */
function exemption(p: ProtectedTagConfig): (caller: Caller) => boolean {
  const named = subjectMatcher(p.who);
  if (!p.claims) return named;
  const claims = compileConditions(p.claims);
  return (caller) => named(caller) && caller.claims !== undefined && claims.check(caller.claims).ok;
}
