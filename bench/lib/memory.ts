import { existsSync } from 'node:fs';
import { open } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { makeTempDir, removeTempDir } from '../../test/harness/tmp.js';

const GiB = 1024 * 1024 * 1024;
const BLOCK = 16 * 1024 * 1024;

/**
 * Writes, then deletes, a file of up to `bytes` on tmpfs, so that memory the VM has not used for
 * a while is backed again before anything is measured. On this VM, page cache and tmpfs growing
 * into such memory run at ~440 MB/s instead of several GB/s, and every target writes there (the
 * registry its blobs, nginx its temp files, the download client its file): without this, the
 * first rounds ran 10–15% slower than the last ones, and whichever target ran first paid most.
 * Leaves at least 4 GiB free.
 */
export async function touchMemory(bytes: number): Promise<number> {
  const room = Math.min(bytes, os.freemem() - 4 * GiB);
  if (room <= 0) return 0;
  // A temp dir of the harness: removed at exit even when the bench is interrupted here.
  const dir = await makeTempDir('bench-touch', existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir());
  const handle = await open(path.join(dir, 'fill'), 'w', 0o600);
  const block = Buffer.alloc(BLOCK, 1);
  let written = 0;
  try {
    while (written < room) written += (await handle.write(block, 0, Math.min(BLOCK, room - written))).bytesWritten;
  } finally {
    await handle.close();
    await removeTempDir(dir);
  }
  return written;
}
