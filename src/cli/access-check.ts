import { loadConfig } from '../config/load.js';
import { AccessPolicy } from '../access/policy.js';
import { AccessRules, rulesForMode } from '../access/rules.js';
import { GroupDirectory } from '../access/groups.js';
import { describeRule } from '../access/describe.js';
import { isRepositoryName } from '../registry/scope.js';
import { createSources } from '../auth/sources/create.js';
import { TokensSource } from '../auth/sources/tokens.js';
import { VerifyPool } from '../auth/verify-pool.js';
import type { IdentitySource, TokenGrant } from '../auth/sources/source.js';
import { createLogger } from '../observe/logger.js';
import { redisTarget } from '../state/redis-client.js';
import type { Config } from '../config/types.js';
import { readFileSync } from 'node:fs';
import type { JWTPayload } from 'jose';
import type { Claims } from '../access/claims.js';
import { OidcSource, type OidcConfig } from '../auth/sources/oidc.js';

const ACTIONS = ['pull', 'push', 'delete'];
const USAGE = 'usage: registry-gate access check USER|token:NAME|oidc:SOURCE|anonymous REPOSITORY pull|push|delete [--claims FILE] [--config FILE]\n';

/** Who the rules would see: the user's groups from the sources (a directory's too), or a token's owner and scopes. */
interface Subject {
  user: string | null;
  groups: string[];
  token?: TokenGrant;
  oidc?: { issuer: string; claims: Claims };
  notes: string[];
}

/**
 * `registry-gate access check USER REPOSITORY ACTION`: the decision the proxy would make, and the
 * rule that made it (like `kubectl auth can-i`). USER `anonymous` is a caller without
 * credentials, `token:NAME` an access token (its owner's rights within its scopes), `oidc:SOURCE`
 * a CI job whose ID token carries the claims of `--claims FILE` (a JSON object, e.g. the decoded
 * payload of a job's token; not verified here). The identity sources are asked for the user, as at
 * a login without the password: the groups a directory gives count. Exit 0: allowed; 1: denied;
 * 2: bad usage or configuration.
 */
export async function runAccessCheck(args: string[], configFile: string, out: NodeJS.WritableStream, err: NodeJS.WritableStream, claimsFile: string | null = null): Promise<number> {
  const [user, repository, action] = args;
  if (args.length !== 3 || !user || !repository || !action) {
    err.write(USAGE);
    return 2;
  }
  if (user.startsWith('oidc:') !== (claimsFile !== null)) {
    err.write(claimsFile === null ? `registry-gate: ${user} needs --claims FILE (the job's ID token claims as JSON)\n` : 'registry-gate: --claims goes with USER oidc:SOURCE (the source that would verify the token)\n');
    return 2;
  }
  if (!ACTIONS.includes(action)) {
    err.write(`registry-gate: ACTION must be one of ${ACTIONS.join(', ')}, got "${action}"\n`);
    return 2;
  }
  if (!isRepositoryName(repository)) {
    err.write(`registry-gate: "${repository}" is not a repository name (lower-case components separated by "/")\n`);
    return 2;
  }
  const { config } = loadConfig(configFile);
  const groups = await GroupDirectory.open(config.groups, config.groupsFile, { logger: null, watch: false });
  await groups.close();
  const rules = config.access ?? rulesForMode(config.auth.mode);
  const policy = new AccessPolicy(new AccessRules(rules), groups, config.auth.publicCatalog);
  let subject: Subject | null;
  if (claimsFile !== null) {
    const job = jobIdentity(config, user.slice('oidc:'.length), claimsFile);
    if (typeof job === 'string') {
      err.write(`registry-gate: ${job}\n`);
      return job.startsWith('ID token refused') ? 1 : 2;
    }
    subject = job;
  } else {
    subject = user === 'anonymous' || config.auth.mode === 'none' ? { user: user === 'anonymous' ? null : user, groups: [], notes: [] } : await identify(config, user);
  }
  if (subject === null) {
    err.write(`registry-gate: no access token "${user.slice('token:'.length)}" (registry-gate token list shows them)\n`);
    return 2;
  }
  const caller = policy.caller(subject.user, subject.groups, subject.token, subject.oidc);
  const decision = config.auth.mode === 'none' ? ({ ok: true, rule: 1 } as const) : policy.decide(caller, { type: 'repository', name: repository, actions: [action] });

  const groupsText = caller.groups.size ? ` (groups: ${[...caller.groups].join(', ')})` : '';
  const who =
    subject.user === null
      ? 'anonymous callers'
      : subject.token
        ? `access token "${subject.token.name}" of "${subject.user}"${groupsText}`
        : subject.oidc
          ? `job "${subject.user}" of oidc source "${subject.oidc.issuer}"${groupsText}`
          : `user "${subject.user}"${groupsText}`;
  out.write(`${decision.ok ? 'allow' : 'deny'}: ${who} ${decision.ok ? 'may' : 'may not'} ${action} ${repository}\n`);
  if (decision.rule !== null) out.write(`  decided by rule ${describeRule(rules[decision.rule - 1]!, decision.rule)}${config.access === null ? `   (the rules of auth.mode "${config.auth.mode}")` : ''}\n`);
  if (!decision.ok) out.write(`  why: ${decision.reason}\n`);
  for (const note of subject.notes) out.write(`  note: ${note}\n`);
  return decision.ok ? 0 : 1;
}

/** A job's identity from its claims, as the oidc source would make it once the token verified; a string says why not. */
function jobIdentity(config: Config, name: string, file: string): Subject | string {
  const source = config.auth.sources.find((s): s is OidcConfig => s.type === 'oidc' && s.name === name);
  if (!source) return `no oidc source named "${name}" in auth.sources`;
  let claims: unknown;
  try {
    claims = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    return `cannot read the claims in ${file}: ${(e as Error).message}`;
  }
  if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) return `${file} is not a JSON object of claims`;
  const answer = new OidcSource(source, { logger: createLogger('silent'), ca: null }).identityOf(claims as JWTPayload);
  if (!answer.ok) return answer.message;
  const { subject, groups } = answer.identity;
  return { user: subject, groups: [...groups], oidc: { issuer: name, claims: claims as Claims }, notes: ['the claims were taken as given; the proxy also checks the signature, issuer, audience and expiry'] };
}

/** Null: `token:NAME` names no token. */
async function identify(config: Config, user: string): Promise<Subject | null> {
  const pool = new VerifyPool({ size: 1 });
  const sources = await createSources(config, { logger: createLogger('silent'), pool, redis: await redisTarget(config), follow: false });
  try {
    const tokens = sources.find((s): s is TokensSource => s instanceof TokensSource);
    if (user.startsWith('token:')) {
      const name = user.slice('token:'.length);
      const stored = tokens?.store.get(name);
      const grant = tokens?.grant(name) ?? null;
      if (!stored) return null;
      const owner = await lookup(sources.filter((s) => s !== tokens), stored.owner);
      const notes = [...owner.notes];
      if (grant === null) notes.push(`the token is expired or its owner gone: it logs in nowhere (expires ${stored.expires})`);
      return { user: stored.owner, groups: owner.groups, ...(grant ? { token: grant } : { token: tokens!.grantOf(stored) }), notes };
    }
    const found = await lookup(sources.filter((s) => s !== tokens), user);
    return { user, groups: found.groups, notes: found.notes };
  } finally {
    await Promise.all(sources.map((s) => s.close()));
    await pool.close();
  }
}

async function lookup(people: IdentitySource[], user: string): Promise<{ groups: string[]; notes: string[] }> {
  for (const source of people) {
    const found = await source.lookup(user);
    if (found.ok) return { groups: [...found.identity.groups], notes: [] };
    if (found.reason === 'unavailable') return { groups: [], notes: [`${found.message}: groups it would give "${user}" are not counted here`] };
  }
  return { groups: [], notes: [`no identity source knows "${user}", so nobody can log in as that user`] };
}
