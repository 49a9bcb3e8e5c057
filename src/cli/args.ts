/**
 * Splits argv into positionals and `--flag value` / `--flag=value` / boolean flags. `flags` keeps
 * a repeated flag's last value, `lists` every value (`--scope a --scope b`).
 */
export function parseArgs(argv: string[], booleanFlags: readonly string[] = []): { positionals: string[]; flags: Map<string, string | true>; lists: Map<string, string[]> } {
  const positionals: string[] = [];
  const flags = new Map<string, string | true>();
  const lists = new Map<string, string[]>();
  const set = (name: string, value: string | true): void => {
    flags.set(name, value);
    if (value !== true) lists.set(name, [...(lists.get(name) ?? []), value]);
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    if (eq !== -1) set(arg.slice(2, eq), arg.slice(eq + 1));
    else if (booleanFlags.includes(arg.slice(2)) || i + 1 >= argv.length) set(arg.slice(2), true);
    else set(arg.slice(2), argv[++i]!);
  }
  return { positionals, flags, lists };
}
