/** Splits argv into positionals and `--flag value` / `--flag=value` / boolean flags. */
export function parseArgs(argv: string[], booleanFlags: readonly string[] = []): { positionals: string[]; flags: Map<string, string | true> } {
  const positionals: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    if (eq !== -1) flags.set(arg.slice(2, eq), arg.slice(eq + 1));
    else if (booleanFlags.includes(arg.slice(2)) || i + 1 >= argv.length) flags.set(arg.slice(2), true);
    else flags.set(arg.slice(2), argv[++i]!);
  }
  return { positionals, flags };
}
