/**
 * What an access token may do at most: its scopes, `GLOB:ACTIONS` each (`team-a/**:pull,push`).
 * A token acts for its owner, so what it may do is what the rules allow the owner **and** what a
 * scope allows — both are asked on every token and every request (policy.ts). zot stores such
 * scopes and never enforces them; here a scope narrower than the owner is the point.
 */
import { compileGlob, globProblem, type Glob } from './glob.js';

export const SCOPE_ACTIONS = ['pull', 'push', 'delete', '*'] as const;
/** More than any robot needs; a longer list is a mistake to look at. */
export const MAX_SCOPES = 32;

export interface ScopeText {
  repositories: string;
  actions: string[];
}

/** `team-a/**:pull,push` → its parts, or why it cannot be a scope. */
export function parseScope(text: string): { ok: true; scope: ScopeText } | { ok: false; reason: string } {
  const colon = text.lastIndexOf(':');
  if (colon <= 0) return { ok: false, reason: `scope "${text}" must be REPOSITORIES:ACTIONS, e.g. "team-a/**:pull,push"` };
  const repositories = text.slice(0, colon);
  const problem = globProblem(repositories, true);
  if (problem) return { ok: false, reason: `scope "${text}": the repository pattern ${problem}` };
  const actions = text.slice(colon + 1).split(',').map((a) => a.trim());
  const unknown = actions.filter((a) => !(SCOPE_ACTIONS as readonly string[]).includes(a));
  if (unknown.length) return { ok: false, reason: `scope "${text}": unknown action "${unknown[0]}" (use pull, push, delete or *)` };
  return { ok: true, scope: { repositories, actions: [...new Set(actions)] } };
}

export function formatScope(scope: ScopeText): string {
  return `${scope.repositories}:${scope.actions.join(',')}`;
}

export class ScopeLimit {
  private readonly compiled: { glob: Glob; actions: readonly string[] }[];

  constructor(readonly scopes: readonly ScopeText[]) {
    this.compiled = scopes.map((s) => ({ glob: compileGlob(s.repositories), actions: s.actions }));
  }

  /** Whether some scope allows `action` on `repository` (`user`: the owner, for `${user}`). */
  allows(repository: string, action: string, user: string | null): boolean {
    return this.compiled.some((s) => (s.actions.includes('*') || s.actions.includes(action)) && s.glob.matches(repository, { user }));
  }

  /** A scope allows every action on every repository: the token is its owner, no narrower. */
  get everything(): boolean {
    return this.compiled.some((s) => s.glob.matchesAll && s.actions.includes('*'));
  }

  get pullsEverything(): boolean {
    return this.compiled.some((s) => s.glob.matchesAll && (s.actions.includes('*') || s.actions.includes('pull')));
  }

  describe(): string {
    return this.scopes.map(formatScope).join(' ');
  }
}
