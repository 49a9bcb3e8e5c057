/**
 * The state directory, made ready before anything is written into it, with a one-line reason
 * when it cannot be. Node's recursive mkdir loops for ever under /proc, and a bare EACCES or
 * ENOTDIR from deep inside start-up tells an operator nothing.
 */
import { constants } from 'node:fs';
import { access, lstat, mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { OperatorError } from '../observe/operator-error.js';

export class StateDirError extends OperatorError {}

export async function prepareStateDir(dir: string): Promise<void> {
  const missing: string[] = [];
  let existing = path.resolve(dir);
  for (;;) {
    const info = await lstat(existing).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? null : Promise.reject(problem(dir, existing, err))));
    if (info) {
      if (!info.isDirectory() && !info.isSymbolicLink()) throw new StateDirError(`stateDir: ${existing} is not a directory; point stateDir at a directory the proxy may write`);
      break;
    }
    missing.unshift(existing);
    const parent = path.dirname(existing);
    if (parent === existing) break;
    existing = parent;
  }
  for (const step of missing) await mkdir(step, { mode: 0o700 }).catch((err: NodeJS.ErrnoException) => Promise.reject(problem(dir, step, err)));
  const probe = path.join(dir, `.write-test-${randomBytes(4).toString('hex')}`);
  try {
    await access(dir, constants.W_OK | constants.X_OK);
    await writeFile(probe, '', { mode: 0o600 });
  } catch (err) {
    throw problem(dir, dir, err as NodeJS.ErrnoException);
  } finally {
    await rm(probe, { force: true }).catch(() => {});
  }
}

function problem(dir: string, at: string, err: NodeJS.ErrnoException): StateDirError {
  const where = at === dir ? dir : `${at} (on the way to ${dir})`;
  return new StateDirError(`stateDir: cannot use ${where} (${err.code ?? err.message}); choose a directory the proxy may create and write, e.g. ./data`);
}
