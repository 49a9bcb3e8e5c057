/**
 * `registry-gate token create|list|revoke`: the operator's side of access tokens (people use
 * /gate/v1/tokens). The store is the proxy's own — stateDir, or Redis with `redis` — so a token
 * made or revoked here counts on every running replica within a second.
 *
 * `create` prints the secret alone on stdout (`SECRET=$(registry-gate token create …)`), what it
 * made on stderr; the secret is never shown again.
 */
import { loadConfig } from '../config/load.js';
import { createLogger } from '../observe/logger.js';
import { openAuditLog } from '../audit/audit-log.js';
import { createSources } from '../auth/sources/create.js';
import { TokensSource } from '../auth/sources/tokens.js';
import { TokenManager, type Actor } from '../auth/access-tokens/manage.js';
import { VerifyPool } from '../auth/verify-pool.js';
import { redisTarget } from '../state/redis-client.js';
import type { TokenView } from '../auth/access-tokens/record.js';

export const TOKEN_USAGE = `usage:
  registry-gate token create NAME --owner USER --scope REPOSITORIES:ACTIONS [--scope …] --expires 30d|2027-06-30 [--config FILE]
  registry-gate token list [--config FILE]
  registry-gate token revoke NAME [--config FILE]
`;

export interface TokenIO {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

const OPERATOR: Actor = { user: null, groups: new Set() };

export async function runToken(positionals: string[], lists: Map<string, string[]>, configFile: string, io: TokenIO): Promise<number> {
  const [verb, name, ...extra] = positionals;
  const allowed = verb === 'create' ? ['owner', 'scope', 'expires'] : [];
  const stray = [...lists.keys()].filter((flag) => flag !== 'config' && !allowed.includes(flag));
  const wantsName = verb === 'create' || verb === 'revoke';
  if (!['create', 'list', 'revoke'].includes(verb ?? '') || extra.length || stray.length || (wantsName ? !name : name !== undefined)) {
    io.stderr.write(TOKEN_USAGE);
    return 2;
  }
  const { config } = loadConfig(configFile);
  if (!config.auth.sources.some((s) => s.type === 'tokens')) {
    io.stderr.write('registry-gate: access tokens are off: add { "type": "tokens" } to auth.sources (first: a token login is then a hash lookup)\n');
    return 2;
  }
  const pool = new VerifyPool();
  const sources = await createSources(config, { logger: createLogger('silent'), pool, redis: await redisTarget(config), follow: false });
  const source = sources.find((s): s is TokensSource => s instanceof TokensSource)!;
  const manager = new TokenManager(source);
  const audit = config.audit.file ? openAuditLog(config.audit.file, createLogger('silent')) : null;
  try {
    if (verb === 'list') {
      io.stdout.write(table(await manager.list(OPERATOR)));
      return 0;
    }
    if (verb === 'revoke') {
      const revoked = await manager.revoke(OPERATOR, name!);
      if (!revoked.ok) {
        io.stderr.write(`registry-gate: ${revoked.message}\n`);
        return 1;
      }
      audit?.record({ event: 'token', action: 'token-revoke', user: null, accessToken: revoked.value.name, owner: revoked.value.owner, client: 'cli', status: 0, request: 'cli' });
      io.stderr.write(`revoked access token "${revoked.value.name}" of "${revoked.value.owner}": refused from now on, also where a registry token was issued from it\n`);
      return 0;
    }
    const owner = lists.get('owner')?.at(-1);
    const expires = lists.get('expires')?.at(-1);
    if (!owner || !expires) {
      io.stderr.write(`registry-gate: token create needs --owner USER and --expires (e.g. 30d); expiry is required\n${TOKEN_USAGE}`);
      return 2;
    }
    const created = await manager.create(OPERATOR, { name: name!, owner, scopes: lists.get('scope') ?? [], expires });
    if (!created.ok) {
      io.stderr.write(`registry-gate: ${created.message}\n`);
      return created.code === 'SOURCE_UNAVAILABLE' || created.code === 'CONFLICT' ? 1 : 2;
    }
    const token = created.value;
    audit?.record({ event: 'token', action: 'token-create', user: null, accessToken: token.name, owner: token.owner, client: 'cli', status: 0, request: 'cli' });
    io.stdout.write(`${token.secret}\n`);
    io.stderr.write(`created access token "${token.name}" for "${token.owner}": ${token.scopes.join(' ')}, expires ${token.expires}; the secret above is shown only now (log in with: docker login -u ${token.name} --password-stdin)\n`);
    return 0;
  } finally {
    await audit?.close();
    await Promise.all(sources.map((s) => s.close()));
    await pool.close();
  }
}

function table(tokens: TokenView[]): string {
  if (tokens.length === 0) return 'no access tokens\n';
  const rows = [
    ['NAME', 'OWNER', 'SCOPES', 'CREATED', 'EXPIRES', 'LAST USED'],
    ...tokens.map((t) => [t.name, t.owner, t.scopes.join(' '), day(t.created), t.expired ? `${day(t.expires)} (expired)` : day(t.expires), t.lastUsed ? t.lastUsed.slice(0, 16).replace('T', ' ') : 'never']),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
}

function day(iso: string): string {
  return iso.slice(0, 10);
}
