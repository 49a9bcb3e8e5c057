import { conditionProblem } from '../access/claims.js';
import type { FieldSpec } from './schema.js';

/**
 * Checks one value against its spec. Messages name the key path the way an operator writes it
 * in the file ("tls.acme.domains[1]") and say what was expected.
 */
export function checkShape(value: unknown, spec: FieldSpec, path: string, errors: string[]): void {
  switch (spec.kind) {
    case 'string':
      if (value === null && spec.nullable) return;
      if (typeof value !== 'string') errors.push(`${path}: expected a string${spec.nullable ? ' or null' : ''}, got ${describe(value)}`);
      return;
    case 'number':
      if (typeof value !== 'number' || !Number.isFinite(value)) {
        errors.push(`${path}: expected a number, got ${describe(value)}`);
      } else if (spec.integer && !Number.isInteger(value)) {
        errors.push(`${path}: expected a whole number, got ${value}`);
      } else if (value < spec.min || value > spec.max) {
        errors.push(`${path}: must be between ${spec.min} and ${spec.max}, got ${value}`);
      }
      return;
    case 'boolean':
      if (typeof value !== 'boolean') errors.push(`${path}: expected true or false, got ${describe(value)}`);
      return;
    case 'enum':
      if (typeof value !== 'string' || !spec.values.includes(value)) {
        errors.push(`${path}: must be one of ${spec.values.map((v) => `"${v}"`).join(', ')}, got ${describe(value)}`);
      }
      return;
    case 'list':
      checkList(value, spec, path, errors);
      return;
    case 'section':
      if (value === null && spec.nullable) return;
      if (!isPlainObject(value)) {
        errors.push(`${path}: expected an object${spec.nullable ? ' or null' : ''}, got ${describe(value)}`);
        return;
      }
      checkSection(value, spec.fields, path, errors);
      return;
    case 'records':
      if (value === null && spec.nullable) return;
      if (!Array.isArray(value)) {
        errors.push(`${path}: expected a list of objects${spec.nullable ? ' or null' : ''}, got ${describe(value)}`);
        return;
      }
      value.forEach((item, i) => {
        const itemPath = `${path}[${i}]`;
        if (!isPlainObject(item)) {
          errors.push(`${itemPath}: expected an object, got ${describe(item)}`);
          return;
        }
        const missing = spec.required.filter((key) => !(key in item));
        if (missing.length) errors.push(`${itemPath}: missing ${missing.map((k) => `"${k}"`).join(', ')}`);
        checkSection(item, spec.fields, itemPath, errors);
      });
      return;
    case 'map':
      if (!isPlainObject(value)) {
        errors.push(`${path}: expected an object, got ${describe(value)}`);
        return;
      }
      for (const [key, v] of Object.entries(value)) checkShape(v, spec.value, `${path}.${key}`, errors);
      return;
    case 'conditions':
      if (!isPlainObject(value)) {
        errors.push(`${path}: expected an object of claim conditions ({"ref": "refs/heads/main"}), got ${describe(value)}`);
        return;
      }
      for (const [key, v] of Object.entries(value)) {
        const problem = conditionProblem(key, v);
        if (problem) errors.push(`${path}: ${problem}`);
      }
      return;
    case 'variants': {
      if (!Array.isArray(value)) {
        errors.push(`${path}: expected a list of objects, got ${describe(value)}`);
        return;
      }
      const types = Object.keys(spec.variants);
      value.forEach((item, i) => {
        const itemPath = `${path}[${i}]`;
        if (!isPlainObject(item)) {
          errors.push(`${itemPath}: expected an object, got ${describe(item)}`);
          return;
        }
        const variant = typeof item.type === 'string' ? spec.variants[item.type] : undefined;
        if (!variant) {
          errors.push(`${itemPath}.type: must be one of ${types.map((t) => `"${t}"`).join(', ')}, got ${describe(item.type)}`);
          return;
        }
        const missing = variant.required.filter((key) => !(key in item));
        if (missing.length) errors.push(`${itemPath}: missing ${missing.map((k) => `"${k}"`).join(', ')} (a "${item.type}" source needs them)`);
        const { type: _type, ...rest } = item;
        checkSection(rest, variant.fields, itemPath, errors);
      });
    }
  }
}

export function checkSection(obj: Record<string, unknown>, fields: Record<string, FieldSpec>, path: string, errors: string[]): void {
  for (const [key, value] of Object.entries(obj)) {
    const keyPath = path ? `${path}.${key}` : key;
    const spec = fields[key];
    if (!spec) {
      const known = Object.keys(fields).join(', ');
      errors.push(`${keyPath}: unknown key (known keys${path ? ` in ${path}` : ''}: ${known})`);
      continue;
    }
    checkShape(value, spec, keyPath, errors);
  }
}

function checkList(value: unknown, spec: Extract<FieldSpec, { kind: 'list' }>, path: string, errors: string[]): void {
  if (!Array.isArray(value)) {
    errors.push(`${path}: expected a list, got ${describe(value)}`);
    return;
  }
  if (spec.minItems && value.length < spec.minItems) errors.push(`${path}: needs at least ${spec.minItems} entr${spec.minItems === 1 ? 'y' : 'ies'}`);
  value.forEach((item, i) => {
    if (spec.item === 'string') {
      if (typeof item !== 'string') errors.push(`${path}[${i}]: expected a string, got ${describe(item)}`);
    } else if (typeof item !== 'string' || !spec.item.enum.includes(item)) {
      errors.push(`${path}[${i}]: must be one of ${spec.item.enum.map((v) => `"${v}"`).join(', ')}, got ${describe(item)}`);
    }
  });
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 60)}…` : v);
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${String(v)}`;
}
