/**
 * The keys that name files, found by walking the schema for its `file` marks (schema.ts,
 * FileRole): path resolution (load.ts) and the file checks of `config check` (files/named-files.ts)
 * both come from here, so no list of file keys is kept by hand.
 */
import { isAbsolute, resolve } from 'node:path';
import type { FieldSpec, FileRole } from './schema.js';

export interface NamedFile {
  /** Where it is in the config: `auth.sources[1].caFile`. */
  key: string;
  path: string;
  role: FileRole;
}

/** Every file key that holds a path (null and empty are left out). */
export function namedFiles(value: unknown, fields: Record<string, FieldSpec>, at = ''): NamedFile[] {
  const found: NamedFile[] = [];
  visit(value, fields, at, (key, path, role) => {
    found.push({ key, path, role });
    return path;
  });
  return found;
}

/** A copy with every file key made absolute against `baseDir`. */
export function resolveFileKeys<T>(value: T, fields: Record<string, FieldSpec>, baseDir: string): T {
  return visit(value, fields, '', (_key, path) => (isAbsolute(path) ? path : resolve(baseDir, path))) as T;
}

type OnFile = (key: string, path: string, role: FileRole) => string;

function visit(value: unknown, fields: Record<string, FieldSpec>, at: string, onFile: OnFile): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  const out: Record<string, unknown> = { ...(value as Record<string, unknown>) };
  for (const [name, spec] of Object.entries(fields)) {
    if (!(name in out)) continue;
    out[name] = visitField(out[name], spec, at ? `${at}.${name}` : name, onFile);
  }
  return out;
}

function visitField(value: unknown, spec: FieldSpec, key: string, onFile: OnFile): unknown {
  switch (spec.kind) {
    case 'string':
      return spec.file && typeof value === 'string' && value !== '' ? onFile(key, value, spec.file) : value;
    case 'section':
      return visit(value, spec.fields, key, onFile);
    case 'records':
      return Array.isArray(value) ? value.map((item, i) => visit(item, spec.fields, `${key}[${i}]`, onFile)) : value;
    case 'variants':
      return Array.isArray(value)
        ? value.map((item, i) => {
            const type = (item as { type?: unknown } | null)?.type;
            const variant = typeof type === 'string' ? spec.variants[type] : undefined;
            return variant ? visit(item, variant.fields, `${key}[${i}]`, onFile) : item;
          })
        : value;
    default:
      return value;
  }
}
