/**
 * Who may do what. Today the answer depends only on the auth mode and on whether the caller is
 * authenticated; the `AccessPolicy` shape is where per-user or per-repository rules would go.
 */
import type { AuthMode } from '../config/types.js';
import type { Access } from './scope.js';

/** The authenticated user name, or null for an anonymous caller. */
export type Subject = string | null;

export interface PolicyOptions {
  publicCatalog: boolean;
}

export interface AccessPolicy {
  /** Actions the subject holds on the resource named by `access` (its `actions` are not consulted). */
  granted(subject: Subject, access: Access): string[];
}

const REPOSITORY_ACTIONS = ['pull', 'push', 'delete'];
const CATALOG_ACTIONS = ['*'];

export function policyFor(mode: AuthMode, options: PolicyOptions): AccessPolicy {
  return {
    granted(subject, access) {
      if (mode === 'none') return [...access.actions];
      if (subject !== null) return authenticatedGrants(access);
      if (mode === 'private') return [];
      return readPublicAnonymousGrants(access, options);
    },
  };
}

export function grantedActions(mode: AuthMode, subject: Subject, access: Access, options: PolicyOptions): string[] {
  return policyFor(mode, options).granted(subject, access);
}

/** The asked actions that are granted, in the asked order; `*` granted covers any asked action. */
export function intersect(asked: string[], granted: string[]): string[] {
  if (granted.includes('*')) return [...new Set(asked)];
  return [...new Set(asked.filter((action) => granted.includes(action)))];
}

function authenticatedGrants(access: Access): string[] {
  if (access.type === 'repository') return [...REPOSITORY_ACTIONS];
  if (access.type === 'registry' && access.name === 'catalog') return [...CATALOG_ACTIONS];
  return [];
}

function readPublicAnonymousGrants(access: Access, options: PolicyOptions): string[] {
  if (access.type === 'repository') return ['pull'];
  if (access.type === 'registry' && access.name === 'catalog' && options.publicCatalog) return [...CATALOG_ACTIONS];
  return [];
}
