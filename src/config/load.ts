import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { isIP } from 'node:net';
import { defaultConfig, LETSENCRYPT_PRODUCTION, LETSENCRYPT_STAGING } from './defaults.js';
import { overridesFromEnv } from './env.js';
import { configSchema } from './schema.js';
import { resolveFileKeys } from './file-keys.js';
import { MIN_TOKEN_SECONDS } from '../registry/token-spec.js';
import { parseListenAddress } from './address.js';
import { checkSection, isPlainObject } from './validate-shape.js';
import { validateTlsConfig } from '../tls/validate.js';
import { accessProblems, accessWarnings } from '../access/validate.js';
import safeRegex from 'safe-regex2';
import { originProblem } from '../proxy/cors.js';
import type { Config } from './types.js';
import { MIN_SECRET_KEY_LENGTH } from '../state/secret-box.js';
import { sourceProblems } from '../auth/sources/validate.js';

export class ConfigError extends Error {
  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    super(`invalid configuration (${source}):\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

export interface LoadedConfig {
  config: Config;
  file: string;
  envApplied: string[];
  /** Valid but probably not meant (printed by `config check`, logged at start). */
  warnings: string[];
}

/**
 * defaults ← file ← REGGATE_* environment, then cross-key checks. Relative paths are resolved
 * against the config file's directory, so a unit file or container can start from anywhere.
 */
export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const path = resolve(file);
  const fromFile = readConfigFile(path);
  const problems: string[] = [];
  checkSection(fromFile, configSchema, '', problems);
  const { overrides, errors: envErrors, applied } = overridesFromEnv(env, configSchema);
  problems.push(...envErrors);
  const envShape: string[] = [];
  checkSection(overrides, configSchema, '', envShape);
  problems.push(...envShape.map((p) => `environment ${p}`));
  if (problems.length) throw new ConfigError(path, problems);

  const merged = deepMerge(deepMerge(defaultConfig(), fromFile), overrides) as Config;
  const config = resolvePaths(merged, dirname(path));
  const crossProblems = crossCheck(config);
  if (crossProblems.length) throw new ConfigError(path, crossProblems);
  return { config, file: path, envApplied: applied, warnings: [...proxyWarnings(config), ...accessWarnings(config)] };
}

function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const hint = code === 'ENOENT' ? 'create it (proxy.config.json in the repository is a complete example; every key is in docs/configuration.md) or pass --config FILE' : 'check its permissions';
    throw new ConfigError(path, [`cannot read the config file (${code ?? (err as Error).message}): ${hint}`]);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(path, [`not valid JSON: ${describeJsonError(text, err as Error)}`]);
  }
  if (!isPlainObject(parsed)) throw new ConfigError(path, ['the file must contain one JSON object ({ … })']);
  return parsed;
}

/** Node reports a character offset; operators look for a line. */
function describeJsonError(text: string, err: Error): string {
  const position = /position (\d+)/.exec(err.message);
  if (!position) return err.message;
  const offset = Number(position[1]);
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  const column = offset - before.lastIndexOf('\n');
  return `${err.message.replace(/ in JSON at position \d+.*$/, '')} at line ${line}, column ${column} (comments and trailing commas are not allowed)`;
}

function deepMerge(base: unknown, over: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(over)) return over === undefined ? base : over;
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) out[key] = deepMerge(base[key], value);
  return out;
}

function resolvePaths(config: Config, baseDir: string): Config {
  const resolved = resolveFileKeys(config, configSchema, baseDir);
  const acme = resolved.tls.acme;
  return {
    ...resolved,
    tls: {
      ...resolved.tls,
      // Absent, it follows stateDir (defaults.ts).
      acme: { ...acme, storageDir: acme.storageDir || resolve(resolved.stateDir, 'acme'), directoryUrl: resolveDirectoryUrl(acme.directoryUrl) },
    },
  };
}

function resolveDirectoryUrl(url: string): string {
  if (url === 'letsencrypt-staging') return LETSENCRYPT_STAGING;
  if (url === 'letsencrypt') return LETSENCRYPT_PRODUCTION;
  return url;
}

function crossCheck(c: Config): string[] {
  const problems: string[] = [];
  for (const [key, value] of [['listen', c.listen], ['httpListen', c.httpListen], ['metrics.listen', c.metrics.listen]] as const) {
    if (value === null) continue;
    const parsed = parseListenAddress(value);
    if ('error' in parsed) problems.push(`${key}: ${parsed.error}`);
  }
  if (c.httpListen !== null && c.tls.mode === 'off') {
    problems.push('httpListen: only useful with TLS (it redirects to https and answers ACME); remove it or set tls.mode');
  }
  problems.push(...checkUrl('upstream', c.upstream, ['http:', 'https:']));
  if (c.redis !== null) problems.push(...checkUrl('redis', c.redis, ['redis:', 'rediss:']));
  c.redisOptions.sentinels.forEach((sentinel, i) => {
    const parsed = parseListenAddress(sentinel);
    if ('error' in parsed || !/:\d+$/.test(sentinel)) problems.push(`redisOptions.sentinels[${i}]: expected "host:port" of a Redis Sentinel, got "${sentinel}"`);
  });
  const { secretKey, secretKeyFile } = c.redisOptions;
  const usesRedisOptions = c.redisOptions.sentinels.length > 0 || c.redisOptions.sentinelPassword !== null || c.redisOptions.caFile !== null || secretKey !== null || secretKeyFile !== null;
  if (c.redis !== null && secretKey === null && secretKeyFile === null) {
    problems.push(
      'redisOptions.secretKeyFile: required with "redis" — the token signing key and the ACME keys kept in Redis are sealed with it, so that reading or writing Redis alone yields no key; create one with `openssl rand -base64 32 > /etc/registry-gate/redis-secret` (the same file on every replica), or set redisOptions.secretKey (REGGATE_REDISOPTIONS_SECRETKEY)',
    );
  }
  if (secretKey !== null && secretKeyFile !== null) problems.push('redisOptions.secretKey: set either secretKey or secretKeyFile, not both');
  if (secretKey !== null && secretKey.trim().length < MIN_SECRET_KEY_LENGTH) {
    problems.push(`redisOptions.secretKey: at least ${MIN_SECRET_KEY_LENGTH} characters (\`openssl rand -base64 32\`)`);
  }
  if (c.redis === null && usesRedisOptions) problems.push('redisOptions: set only with "redis" (with sentinels, "redis" names the master: redis://[:password@]mymaster/0)');
  if (c.redisOptions.caFile !== null && c.redis !== null && !c.redis.startsWith('rediss:')) {
    problems.push('redisOptions.caFile: only used for TLS to Redis; write "redis" as rediss://…');
  }
  if (c.auth.tokenRealm !== null) problems.push(...checkUrl('auth.tokenRealm', c.auth.tokenRealm, ['http:', 'https:']));
  c.cors.allowedOrigins.forEach((origin, i) => {
    const problem = originProblem(origin);
    if (problem) problems.push(`cors.allowedOrigins[${i}]: "${origin}" ${problem}`);
  });
  c.trustedProxies.forEach((cidr, i) => {
    if (!parseCidr(cidr)) problems.push(`trustedProxies[${i}]: "${cidr}" is not an IP address or CIDR (e.g. "10.0.0.0/8", "::1/128")`);
  });
  c.blockUserAgents.forEach((pattern, i) => {
    try {
      new RegExp(pattern);
    } catch (err) {
      problems.push(`blockUserAgents[${i}]: not a valid regular expression (${(err as Error).message})`);
      return;
    }
    // Run against every request's User-Agent, which the client chooses: a pattern that can
    // backtrack exponentially would let one request stall the proxy.
    if (!safeRegex(pattern)) {
      problems.push(`blockUserAgents[${i}]: "${pattern}" can take exponential time on a crafted User-Agent (a repeated group holding a quantifier, like (a+)+); rewrite it without nested repetition`);
    }
  });
  if (/["\\\r\n]/.test(c.auth.realm)) problems.push('auth.realm: must not contain quotes, backslashes or line breaks');
  problems.push(...validateTlsConfig(c.tls));
  problems.push(...sourceProblems(c.auth.sources));
  problems.push(...accessProblems(c));
  if (c.tls.mode === 'acme' && c.tls.acme.challenges.includes('http-01') && c.httpListen === null) {
    problems.push('tls.acme.challenges: "http-01" needs httpListen (the CA connects to port 80 there); set httpListen (e.g. "0.0.0.0:80") or list only "tls-alpn-01"');
  }
  return problems;
}

/** Valid, but probably not what the operator meant. */
function proxyWarnings(c: Config): string[] {
  const warnings: string[] = [];
  if (c.auth.challenge === 'token' && c.auth.tokenTtlSeconds < MIN_TOKEN_SECONDS) {
    warnings.push(
      `auth.tokenTtlSeconds: ${c.auth.tokenTtlSeconds} is below the token specification's minimum; tokens live ${MIN_TOKEN_SECONDS} s (docker and podman use a token that long whatever it says, and a shorter one failed their pushes)`,
    );
  }
  c.trustedProxies.forEach((cidr, i) => {
    const parsed = parseCidr(cidr);
    if (parsed && parsed.prefix === 0) {
      warnings.push(
        `trustedProxies[${i}]: "${cidr}" trusts every ${parsed.family === 'ipv4' ? 'IPv4' : 'IPv6'} address: any client can then set X-Forwarded-For/-Proto/-Host (its address in the logs, the audit trail and the login limits, and the registry's Location URLs); list your load balancers' addresses instead`,
      );
    }
  });
  return warnings;
}

function checkUrl(key: string, value: string, protocols: string[]): string[] {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return [`${key}: "${value}" is not a URL (expected e.g. ${protocols[0]}//host:port)`];
  }
  if (!protocols.includes(url.protocol)) return [`${key}: scheme must be ${protocols.join(' or ')}, got "${url.protocol}"`];
  return [];
}

export function parseCidr(text: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } | null {
  const [address = '', prefixText, extra] = text.split('/');
  const version = isIP(address);
  if (!version || extra !== undefined) return null;
  const max = version === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (!/^\d+$/.test(prefixText ?? String(max)) || prefix > max) return null;
  return { address, prefix, family: version === 4 ? 'ipv4' : 'ipv6' };
}

