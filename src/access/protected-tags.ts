/**
 * Protected tags: a release tag that exists may not be pointed at another digest, nor its
 * manifest deleted, except by the subjects a protection lists. Re-pushing the digest a tag
 * already has is no move (CI re-runs do it) and stays allowed.
 */
import type { ProtectedTagConfig } from '../config/types.js';
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

  constructor(config: readonly ProtectedTagConfig[]) {
    this.replace(config);
  }

  /** SIGHUP: the protections from now on. */
  replace(config: readonly ProtectedTagConfig[]): void {
    this.list = config.map((p, i) => ({
      index: i + 1,
      repositories: p.repositories.map(compileGlob),
      tags: p.tags.map(compileGlob),
      exempt: subjectMatcher(p.who),
    }));
  }

  get empty(): boolean {
    return this.list.length === 0;
  }

  /** The protections that bind this caller in this repository (those it is not exempt from). */
  private binding(caller: Caller, repository: string): CompiledProtection[] {
    return this.list.filter((p) => p.repositories.some((g) => g.matches(repository, caller.user)) && !p.exempt(caller));
  }

  /** The 1-based number of the protection that stops this caller from moving `tag`, or null. */
  protecting(caller: Caller, repository: string, tag: string): number | null {
    return this.binding(caller, repository).find((p) => p.tags.some((g) => g.matches(tag, caller.user)))?.index ?? null;
  }

  /** Whether any tag of the repository is protected against this caller (a digest DELETE must then look). */
  guardsAny(caller: Caller, repository: string): boolean {
    return this.binding(caller, repository).length > 0;
  }
}
