/**
 * SIGHUP: the config file is read again and what can change under running connections does —
 * who may do what (`access`, `groups`, `groupsFile`, `protectedTags`, `auth.publicCatalog`) and
 * `log.level`; the htpasswd, htgroup and TLS files are read again too. Keys that shape listeners,
 * upstream connections or stored state only change at the next start; the log says which.
 */
import type { Config } from '../config/types.js';

/** Keys applied on reload, as dotted paths. */
export const RELOADABLE = ['access', 'groups', 'groupsFile', 'protectedTags', 'auth.publicCatalog', 'log.level'] as const;

export type ReloadableKey = (typeof RELOADABLE)[number];

export interface ReloadPlan {
  /** Reloadable keys whose value changed. */
  apply: ReloadableKey[];
  /** Other keys whose value changed: they keep their running value until the next start. */
  atNextStart: string[];
}

/** Which changed keys apply now and which wait for a restart (leaf paths, sorted). */
export function planReload(running: Config, next: Config): ReloadPlan {
  const changed = changedPaths(running, next, '');
  const apply = RELOADABLE.filter((key) => changed.some((path) => path === key || path.startsWith(`${key}.`)));
  const atNextStart = changed.filter((path) => !RELOADABLE.some((key) => path === key || path.startsWith(`${key}.`)));
  return { apply, atNextStart };
}

/** `running` with every reloadable key taken from `next`: what runs after a reload is applied. */
export function withReloaded(running: Config, next: Config): Config {
  const out = structuredClone(running) as unknown as Record<string, unknown>;
  for (const key of RELOADABLE) {
    const path = key.split('.');
    let from: unknown = next;
    let into = out;
    for (const part of path.slice(0, -1)) {
      from = (from as Record<string, unknown>)[part];
      into = into[part] as Record<string, unknown>;
    }
    into[path.at(-1)!] = structuredClone((from as Record<string, unknown>)[path.at(-1)!]);
  }
  return out as unknown as Config;
}

/** Dotted paths where the two values differ; a section is walked, anything else (lists too) compared whole. */
function changedPaths(a: unknown, b: unknown, prefix: string): string[] {
  if (isSection(a) && isSection(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    return keys.flatMap((key) => changedPaths(a[key], b[key], prefix ? `${prefix}.${key}` : key));
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [prefix];
}

function isSection(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
