import { loadConfig } from '../config/load.js';
import { configSchema, type FieldSpec } from '../config/schema.js';
import { maskUrlPassword } from '../config/mask.js';

/** Prints the effective config (defaults, file and environment merged) with secrets masked. */
export function runConfigCheck(configFile: string, out: NodeJS.WritableStream): number {
  const { config, file, envApplied } = loadConfig(configFile);
  out.write(`# ${file} is valid${envApplied.length ? `; environment overrides: ${envApplied.join(', ')}` : ''}\n`);
  out.write(`${JSON.stringify(mask(config, { kind: 'section', fields: configSchema }), null, 2)}\n`);
  return 0;
}

function mask(value: unknown, spec: FieldSpec): unknown {
  if (value === null || value === undefined) return value;
  if (spec.kind === 'section') {
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value as Record<string, unknown>)) out[key] = spec.fields[key] ? mask(v, spec.fields[key]) : v;
    return out;
  }
  if (spec.kind === 'string' && spec.secret && typeof value === 'string') return maskUrlPassword(value);
  return value;
}
