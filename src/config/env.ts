import type { FieldSpec } from './schema.js';

export const ENV_PREFIX = 'REGGATE_';

interface EnvBinding {
  variable: string;
  path: string[];
  spec: FieldSpec;
}

/**
 * Every key path maps to REGGATE_<PATH> (upper-cased, joined with "_"): REGGATE_AUTH_MODE,
 * REGGATE_TLS_ACME_DOMAINS. Nullable sections (tls.acme.eab) bind as a whole, as JSON, as well
 * as field by field.
 */
export function envBindings(schema: Record<string, FieldSpec>, prefix: string[] = []): EnvBinding[] {
  const out: EnvBinding[] = [];
  for (const [key, spec] of Object.entries(schema)) {
    const path = [...prefix, key];
    if (spec.kind !== 'section' || spec.nullable) out.push({ variable: ENV_PREFIX + path.join('_').toUpperCase(), path, spec });
    if (spec.kind === 'section') out.push(...envBindings(spec.fields, path));
  }
  return out;
}

/**
 * Turns the REGGATE_* variables into a partial config object. Values are read as the key's type:
 * numbers and booleans as such, lists as a JSON array or comma-separated, "null" as null for keys
 * that allow it, sections as JSON. A variable that names no key is an error, like an unknown key.
 */
export function overridesFromEnv(
  env: NodeJS.ProcessEnv,
  schema: Record<string, FieldSpec>,
): { overrides: Record<string, unknown>; errors: string[]; applied: string[] } {
  const bindings = new Map(envBindings(schema).map((b) => [b.variable, b]));
  const overrides: Record<string, unknown> = {};
  const errors: string[] = [];
  const applied: string[] = [];
  for (const [variable, raw] of Object.entries(env)) {
    if (!variable.startsWith(ENV_PREFIX) || raw === undefined) continue;
    const binding = bindings.get(variable);
    if (!binding) {
      errors.push(`${variable}: no such config key (known: ${[...bindings.keys()].join(', ')})`);
      continue;
    }
    const parsed = parseEnvValue(raw, binding.spec);
    if ('error' in parsed) {
      errors.push(`${variable}: ${parsed.error}`);
      continue;
    }
    setPath(overrides, binding.path, parsed.value);
    applied.push(variable);
  }
  return { overrides, errors, applied };
}

function parseEnvValue(raw: string, spec: FieldSpec): { value: unknown } | { error: string } {
  const trimmed = raw.trim();
  const nullable = (spec.kind === 'string' || spec.kind === 'section' || spec.kind === 'records') && spec.nullable === true;
  if (nullable && trimmed === 'null') return { value: null };
  switch (spec.kind) {
    case 'string':
    case 'enum':
      return { value: raw };
    case 'number': {
      const n = Number(trimmed);
      return trimmed !== '' && Number.isFinite(n) ? { value: n } : { error: `expected a number, got "${raw}"` };
    }
    case 'boolean':
      if (trimmed === 'true' || trimmed === '1') return { value: true };
      if (trimmed === 'false' || trimmed === '0') return { value: false };
      return { error: `expected true or false, got "${raw}"` };
    case 'list':
      if (trimmed.startsWith('[')) return parseJson(trimmed);
      return { value: trimmed === '' ? [] : trimmed.split(',').map((s) => s.trim()) };
    case 'section':
    case 'records':
    case 'map':
    case 'variants':
    case 'conditions':
      return parseJson(trimmed);
  }
}

function parseJson(text: string): { value: unknown } | { error: string } {
  try {
    return { value: JSON.parse(text) };
  } catch (err) {
    return { error: `not valid JSON (${(err as Error).message})` };
  }
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]!] = value;
}
