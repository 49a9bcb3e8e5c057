import { loadConfig } from '../config/load.js';
import { AccessPolicy } from '../access/policy.js';
import { AccessRules, rulesForMode } from '../access/rules.js';
import { GroupDirectory } from '../access/groups.js';
import { describeRule } from '../access/describe.js';
import { isRepositoryName } from '../registry/scope.js';
import { readFile } from 'node:fs/promises';
import { parseHtpasswd } from '../auth/htpasswd.js';

const ACTIONS = ['pull', 'push', 'delete'];

/**
 * `registry-gate access check USER REPOSITORY ACTION`: the decision the proxy would make, and the
 * rule that made it (like `kubectl auth can-i`). USER `anonymous` is a caller without
 * credentials. Exit 0: allowed; 1: denied; 2: bad usage or configuration.
 */
export async function runAccessCheck(args: string[], configFile: string, out: NodeJS.WritableStream, err: NodeJS.WritableStream): Promise<number> {
  const [user, repository, action] = args;
  if (args.length !== 3 || !user || !repository || !action) {
    err.write('usage: registry-gate access check USER|anonymous REPOSITORY pull|push|delete [--config FILE]\n');
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
  const subject = user === 'anonymous' ? null : user;
  const caller = policy.caller(subject);
  const decision = config.auth.mode === 'none' ? ({ ok: true, rule: 1 } as const) : policy.decide(caller, { type: 'repository', name: repository, actions: [action] });

  const who = subject === null ? 'anonymous callers' : `user "${subject}"${caller.groups.size ? ` (groups: ${[...caller.groups].join(', ')})` : ''}`;
  out.write(`${decision.ok ? 'allow' : 'deny'}: ${who} ${decision.ok ? 'may' : 'may not'} ${action} ${repository}\n`);
  if (decision.rule !== null) out.write(`  decided by rule ${describeRule(rules[decision.rule - 1]!, decision.rule)}${config.access === null ? `   (the rules of auth.mode "${config.auth.mode}")` : ''}\n`);
  if (!decision.ok) out.write(`  why: ${decision.reason}\n`);
  if (subject !== null && config.auth.mode !== 'none') {
    const text = await readFile(config.auth.htpasswdFile, 'utf8').catch(() => null);
    if (text === null) out.write(`  note: ${config.auth.htpasswdFile} cannot be read, so nobody can log in\n`);
    else if (!parseHtpasswd(text).users.has(subject)) out.write(`  note: "${subject}" is not in ${config.auth.htpasswdFile}, so nobody can log in as that user\n`);
  }
  return decision.ok ? 0 : 1;
}
