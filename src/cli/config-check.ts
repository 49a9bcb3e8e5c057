import { readFileSync } from 'node:fs';
import { loadConfig } from '../config/load.js';
import { cheapEntriesWarning, parseHtpasswd } from '../auth/htpasswd.js';
import { configSchema, type FieldSpec } from '../config/schema.js';
import { maskUrlPassword } from '../config/mask.js';
import { rulesForMode } from '../access/rules.js';
import { describeClaims, describeRule } from '../access/describe.js';
import { checkNamedFiles } from '../files/named-files.js';
import { selfCommand } from './self-command.js';
import { knownNames } from '../proxy/known-hosts.js';

/**
 * Prints the effective config (defaults, file and environment merged) with secrets masked, and
 * what is wrong with the files it names (exit 2 when `serve` would refuse to start).
 */
export async function runConfigCheck(configFile: string, out: NodeJS.WritableStream): Promise<number> {
  const { config, file, envApplied, warnings } = loadConfig(configFile);
  if (config.auth.mode !== 'none') warnings.push(...htpasswdWarnings(config.auth.htpasswdFile));
  if (knownNames(config).length === 0) {
    warnings.push('no host names are known (tls.names of a self-signed certificate, tls.acme.domains, auth.tokenRealm): requests for any Host are answered, and the token realm and upload URLs repeat it; set auth.tokenRealm to the URL clients use');
  }
  const findings = await checkNamedFiles(config, { selfCommand: selfCommand() });
  const errors = findings.filter((f) => f.severity === 'error');
  warnings.push(...findings.filter((f) => f.severity === 'warning').map((f) => f.message));
  const overrides = envApplied.length ? `; environment overrides: ${envApplied.join(', ')}` : '';
  out.write(
    errors.length
      ? `# ${file} is valid, but the proxy would not start: ${errors.length} named file(s) are not usable${overrides}\n`
      : `# ${file} is valid${overrides}\n`,
  );
  for (const e of errors) out.write(`# error: ${e.message}\n`);
  if (process.getuid?.() === 0) {
    out.write('# note: checked as root, who may read any file; run it as the service user to check what that user may read (sudo -u registry-gate …)\n');
  }
  for (const warning of warnings) out.write(`# warning: ${warning}\n`);
  out.write(`${JSON.stringify(mask(config, { kind: 'section', fields: configSchema }), null, 2)}\n`);
  const rules = config.access ?? rulesForMode(config.auth.mode);
  out.write(`# access rules in force (${config.access === null ? `those of auth.mode "${config.auth.mode}"` : 'from "access"'}; first match wins, anything unmatched is denied):\n`);
  rules.forEach((rule, i) => out.write(`#   ${describeRule(rule, i + 1)}\n`));
  config.protectedTags.forEach((p, i) => {
    out.write(`# protected tags ${i + 1}: ${p.tags.join(', ')} in ${p.repositories.join(', ')}; may still be moved by: ${p.who.length ? p.who.join(', ') : 'nobody'}${describeClaims(p.claims)}\n`);
  });
  return errors.length ? 2 : 0;
}

function mask(value: unknown, spec: FieldSpec): unknown {
  if (value === null || value === undefined) return value;
  if (spec.kind === 'section') {
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value as Record<string, unknown>)) out[key] = spec.fields[key] ? mask(v, spec.fields[key]) : v;
    return out;
  }
  if (spec.kind === 'string' && spec.secret && typeof value === 'string') return maskUrlPassword(value);
  if (spec.kind === 'records' && Array.isArray(value)) return value.map((item) => mask(item, { kind: 'section', fields: spec.fields }));
  if (spec.kind === 'variants' && Array.isArray(value)) {
    return value.map((item: { type: string }) => mask(item, { kind: 'section', fields: spec.variants[item.type]?.fields ?? {} }));
  }
  return value;
}

function htpasswdWarnings(file: string): string[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const warning = cheapEntriesWarning(parseHtpasswd(text).users);
  return warning ? [`auth.htpasswdFile: ${warning}`] : [];
}
