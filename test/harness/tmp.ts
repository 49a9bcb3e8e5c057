import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { trackDir, untrackDir } from './cleanup.js';

/**
 * A fresh directory under the system temp dir. It is also removed at process exit in case the
 * test never reaches removeTempDir(), so nothing accumulates in /tmp across runs.
 */
export async function makeTempDir(prefix: string, base: string = os.tmpdir()): Promise<string> {
  const dir = await mkdtemp(path.join(base, `rg-${prefix.replace(/[^A-Za-z0-9_.-]/g, '_')}-`));
  trackDir(dir);
  return dir;
}

export async function removeTempDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true, maxRetries: 3, retryDelay: 100 });
  untrackDir(dir);
}
