/**
 * Resource scopes of the Docker token specification: `repository:library/alpine:pull,push`,
 * `repository(plugin):vieux/sshfs:pull`, `registry:catalog:*`.
 */

export interface Access {
  /** Resource type without its class: `repository`, `registry`. */
  type: string;
  name: string;
  actions: string[];
  /** The optional resource class, `plugin` in `repository(plugin)`; it does not change what is granted. */
  class?: string;
}

export const MAX_REPOSITORY_NAME_LENGTH = 255;
/** A scope longer than a maximal name plus every action is not a scope. */
const MAX_SCOPE_LENGTH = 512;

// distribution's path-component grammar `[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*` with the empty
// separator folded into the alphanumeric run: same language, but without the ambiguity that makes
// a backtracking engine exponential on names like "aaaa…a!". Names in /v2/ URLs and scopes never
// carry a hostname.
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const RESOURCE_TYPE = /^([a-z0-9]+)(?:\(([a-z0-9]+)\))?$/;
const ACTION = /^(?:[a-z][a-z-]*|\*)$/;

export function isRepositoryName(name: string): boolean {
  if (name.length === 0 || name.length > MAX_REPOSITORY_NAME_LENGTH) return false;
  return name.split('/').every((component) => PATH_COMPONENT.test(component));
}

/**
 * The type is everything before the first ':', the actions everything after the last one, the
 * name what lies between. Anything that does not fit the grammar is null: the token endpoint
 * ignores such scopes instead of failing the whole request.
 */
export function parseScope(scope: string): Access | null {
  if (scope.length === 0 || scope.length > MAX_SCOPE_LENGTH) return null;
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first < 0 || last === first) return null;

  const typeMatch = RESOURCE_TYPE.exec(scope.slice(0, first));
  if (!typeMatch) return null;
  const type = typeMatch[1]!;
  const resourceClass = typeMatch[2];
  const name = scope.slice(first + 1, last);
  const actions = parseActions(scope.slice(last + 1));
  if (actions === null) return null;

  if (type === 'repository') {
    if (!isRepositoryName(name)) return null;
  } else if (type === 'registry') {
    // The only registry-wide resource distribution knows.
    if (name !== 'catalog' || resourceClass !== undefined) return null;
  } else {
    return null;
  }
  const access: Access = { type, name, actions };
  if (resourceClass !== undefined) access.class = resourceClass;
  return access;
}

function parseActions(text: string): string[] | null {
  const actions: string[] = [];
  for (const action of text.split(',')) {
    if (action === '') continue;
    if (!ACTION.test(action)) return null;
    if (!actions.includes(action)) actions.push(action);
  }
  return actions.length > 0 ? actions : null;
}

export function formatScope(access: Access): string {
  const type = access.class ? `${access.type}(${access.class})` : access.type;
  return `${type}:${access.name}:${access.actions.join(',')}`;
}

/** Same resource (type and name; the class is decoration). */
export function sameResource(a: Access, b: Access): boolean {
  return a.type === b.type && a.name === b.name;
}

/** One entry per resource, actions united, in first-seen order. */
export function mergeAccess(list: Access[]): Access[] {
  const merged: Access[] = [];
  for (const access of list) {
    const existing = merged.find((m) => sameResource(m, access));
    if (!existing) {
      merged.push({ ...access, actions: [...access.actions] });
      continue;
    }
    for (const action of access.actions) if (!existing.actions.includes(action)) existing.actions.push(action);
  }
  return merged;
}
