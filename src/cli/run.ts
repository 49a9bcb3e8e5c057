import { debuglog } from 'node:util';
import { ConfigError } from '../config/load.js';
import { OperatorError } from '../observe/operator-error.js';
import { parseArgs } from './args.js';

const USAGE = `usage:
  registry-gate serve [--config FILE]                 run the proxy (default config: ./proxy.config.json)
  registry-gate passwd add|delete|verify USER [--file FILE] [--password-stdin] [--cost N]
  registry-gate config check [--config FILE]          validate and print the effective config and the access rules
  registry-gate access check USER|token:NAME|oidc:SOURCE|anonymous REPOSITORY pull|push|delete [--claims FILE] [--config FILE]
                                                      allow or deny, and the rule that decided (exit 0 / 1)
  registry-gate auth test USER [--password-stdin] [--config FILE]
                                                      log in through the identity sources: which answered, the groups, the rules that apply
  registry-gate token create NAME --owner USER --scope REPOSITORIES:ACTIONS [--scope …] --expires 30d [--config FILE]
                                                      an access token for robots and people; prints its secret once
  registry-gate token list|revoke [NAME] [--config FILE]
                                                      the access tokens (never a secret), or revoke one on every replica
  registry-gate health [--config FILE]                exit 0 when the proxy of this config answers /healthz
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'passwd') {
    const { runPasswd } = await import('./passwd.js');
    return runPasswd(rest, { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, isTTY: Boolean(process.stdin.isTTY) });
  }
  const { positionals, flags, lists } = parseArgs(rest, ['password-stdin']);
  const configFlag = flags.get('config');
  const configFile = typeof configFlag === 'string' ? configFlag : './proxy.config.json';
  const unknownFlags = [...flags.keys()].filter((f) => f !== 'config');
  // Each command loads only what it uses: a module loaded stays in the proxy's resident memory.
  if (command === 'serve' && positionals.length === 0 && unknownFlags.length === 0) return (await import('./serve.js')).runServe(configFile);
  if (command === 'config' && positionals.length === 1 && positionals[0] === 'check' && unknownFlags.length === 0) {
    return (await import('./config-check.js')).runConfigCheck(configFile, process.stdout);
  }
  if (command === 'health' && positionals.length === 0 && unknownFlags.length === 0) return (await import('./health.js')).runHealth(configFile, process.stdout);
  if (command === 'access' && positionals[0] === 'check' && unknownFlags.every((f) => f === 'claims')) {
    const claims = flags.get('claims');
    return (await import('./access-check.js')).runAccessCheck(positionals.slice(1), configFile, process.stdout, process.stderr, typeof claims === 'string' ? claims : null);
  }
  if (command === 'auth' && positionals[0] === 'test' && unknownFlags.every((f) => f === 'password-stdin')) {
    return (await import('./auth-test.js')).runAuthTest(positionals.slice(1), flags.has('password-stdin'), configFile, { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr });
  }
  if (command === 'token') return (await import('./token.js')).runToken(positionals, lists, configFile, { stdout: process.stdout, stderr: process.stderr });
  if (command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(USAGE);
    return 0;
  }
  process.stderr.write(USAGE);
  return 2;
}

/**
 * What reaches the operator is one line per cause, naming the fix; a stack trace only with
 * NODE_DEBUG=registry-gate, for a failure nobody foresaw.
 */
function fatal(err: unknown): number {
  const say = (line: string) => process.stderr.write(`registry-gate: ${line}\n`);
  if (err instanceof OperatorError) {
    err.problems.forEach(say);
    return err.exitCode;
  }
  if (err instanceof ConfigError) {
    process.stderr.write(`registry-gate: ${err.message}\nFix the keys above (docs/configuration.md) and start again.\n`);
    return 2;
  }
  const e: NodeJS.ErrnoException = err instanceof Error ? err : new Error(String(err));
  if (e.code === 'EADDRINUSE' || e.code === 'EACCES') {
    say(`cannot listen: ${e.message} (choose another "listen" address, or run with the right to bind it)`);
  } else if (debuglog('registry-gate').enabled) {
    say(e.stack ?? e.message);
  } else {
    say(`${e.message.split('\n')[0]} (unexpected; NODE_DEBUG=registry-gate prints where it happened)`);
  }
  return 1;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    // Whatever a failed start left open (Redis connections, ACME timers, bcrypt workers) must not
    // keep a process without a listener alive: a supervisor would see it running and never restart it.
    process.exit(fatal(err));
  },
);
