/**
 * The command that runs this same CLI from where the operator stands, for hints such as "add a
 * user with: …". A bare `registry-gate` is only on PATH after a global install or in the image,
 * and `npx registry-gate` only works inside the checkout (and needs a writable HOME), so the
 * hint is worked out rather than assumed: a hint that fails is worse than none.
 */
import { realpathSync, readFileSync } from 'node:fs';
import path from 'node:path';

export interface Whereabouts {
  /** The script being run (process.argv[1]). */
  script: string;
  cwd: string;
  pathVariable: string;
}

const NAME = 'registry-gate';

export function selfCommand(where: Whereabouts = { script: process.argv[1] ?? '', cwd: process.cwd(), pathVariable: process.env.PATH ?? '' }): string {
  const script = real(where.script);
  if (script === null) return NAME;
  for (const dir of where.pathVariable.split(path.delimiter)) {
    if (dir && path.isAbsolute(dir) && real(path.join(dir, NAME)) === script) return NAME;
  }
  if (real(path.join(where.cwd, 'dist', 'cli', 'main.js')) === script && packageName(where.cwd) === NAME) return `npx ${NAME}`;
  return `node ${quote(script)}`;
}

function real(file: string): string | null {
  try {
    return realpathSync(file);
  } catch {
    return null;
  }
}

function packageName(dir: string): string | null {
  try {
    const parsed = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: unknown };
    return typeof parsed.name === 'string' ? parsed.name : null;
  } catch {
    return null;
  }
}

function quote(file: string): string {
  return /^[\w./-]+$/.test(file) ? file : `'${file.replaceAll("'", "'\\''")}'`;
}
