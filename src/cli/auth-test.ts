/**
 * `registry-gate auth test USER [--password-stdin] [--config FILE]`: one login through the same
 * identify chain the proxy runs (the sources in order, limits off), then what the rules allow the
 * identity — which source answered, its directory entry and groups. Exit 0: logged in; 1: not;
 * 2: bad usage or configuration. The password comes from a prompt or stdin, never from argv.
 */
import { loadConfig } from '../config/load.js';
import { createLogger } from '../observe/logger.js';
import { AccessPolicy } from '../access/policy.js';
import { AccessRules, rulesForMode, subjectMatcher } from '../access/rules.js';
import { GroupDirectory } from '../access/groups.js';
import { describeRule } from '../access/describe.js';
import { createSources } from '../auth/sources/create.js';
import { Identifier } from '../auth/identify.js';
import { VerifyPool } from '../auth/verify-pool.js';
import { redisTarget } from '../state/redis-client.js';
import { InputReader, InterruptedError } from './input.js';

const MAX_PASSWORD_LENGTH = 4096;

export interface AuthTestIO {
  stdin: NodeJS.ReadableStream;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

export async function runAuthTest(args: string[], passwordStdin: boolean, configFile: string, io: AuthTestIO): Promise<number> {
  const [user] = args;
  if (args.length !== 1 || !user) {
    io.stderr.write('usage: registry-gate auth test USER [--password-stdin] [--config FILE]\n');
    return 2;
  }
  const { config } = loadConfig(configFile);
  if (config.auth.mode === 'none') {
    io.stderr.write('registry-gate: auth.mode is "none": nobody logs in, everybody may do everything\n');
    return 2;
  }
  const input = new InputReader(io.stdin);
  let password: string | null;
  try {
    password = passwordStdin ? await input.readLine(MAX_PASSWORD_LENGTH) : await input.readHidden(io.stderr, 'Password: ', MAX_PASSWORD_LENGTH);
  } catch (err) {
    if (err instanceof InterruptedError) return 1;
    throw err;
  } finally {
    input.close();
  }
  if (password === null) {
    io.stderr.write('registry-gate: no password on stdin\n');
    return 2;
  }
  const pool = new VerifyPool();
  const sources = await createSources(config, { logger: createLogger('silent'), pool, redis: await redisTarget(config), follow: false });
  const identifier = new Identifier(sources, { ...config.loginLimits, enabled: false });
  try {
    const outcome = await identifier.login(user, password, 'registry-gate auth test');
    if (!outcome.ok) {
      io.stdout.write(`refused: ${outcome.message}\n`);
      return 1;
    }
    const { identity } = outcome;
    const groups = await GroupDirectory.open(config.groups, config.groupsFile, { logger: null, watch: false });
    await groups.close();
    const rules = config.access ?? rulesForMode(config.auth.mode);
    const caller = new AccessPolicy(new AccessRules(rules), groups, config.auth.publicCatalog).caller(identity.subject, identity.groups, identity.token);
    io.stdout.write(`logged in: "${identity.subject}" by source "${identity.source}"${identity.entry ? ` (${identity.entry})` : ''}\n`);
    if (identity.token) io.stdout.write(`  with access token "${identity.token.name}", limited to ${identity.token.limit.describe()}\n`);
    io.stdout.write(`  groups: ${caller.groups.size ? [...caller.groups].sort().join(', ') : '(none)'}${identity.groups.length ? `; from the source: ${identity.groups.join(', ')}` : ''}\n`);
    const naming = rules.map((rule, i) => ({ rule, i })).filter(({ rule }) => subjectMatcher(rule.who)(caller));
    io.stdout.write(naming.length ? '  rules that name them (first match per repository wins):\n' : '  no rule names them: every request is denied\n');
    for (const { rule, i } of naming) io.stdout.write(`    ${describeRule(rule, i + 1)}\n`);
    return 0;
  } finally {
    await identifier.close();
    await pool.close();
  }
}
