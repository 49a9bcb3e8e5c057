import { run } from './process.js';

/**
 * Writes an htpasswd file with bcrypt entries ($2y$) using the real `htpasswd -B`, the tool
 * operators use, so tests see exactly its output format. The password goes through stdin (-i)
 * rather than -b, to keep it off argv. Cost 5 keeps tests fast; production files use 10+.
 */
export async function writeHtpasswd(file: string, users: Record<string, string>, cost = 5): Promise<void> {
  const names = Object.keys(users);
  if (names.length === 0) throw new Error('writeHtpasswd: no users');
  for (const [i, user] of names.entries()) {
    const flags = i === 0 ? ['-c'] : [];
    await run('htpasswd', [...flags, '-B', '-C', String(cost), '-i', file, user], {
      stdin: `${users[user]}\n`,
      check: true,
      timeoutMs: 30_000,
    });
  }
}
