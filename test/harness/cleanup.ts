import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';

/**
 * Last-resort cleanup for when a test file dies without reaching its stop() calls (an uncaught
 * error, the test runner's timeout sending SIGTERM). Node never kills children on exit, so
 * without this a crashed test leaves registries and dockerds running for the next run to trip
 * over. Normal teardown still goes through each handle's stop(); entries are removed there.
 */

/**
 * Lazily unmounts every mount point at or below `dir`. dockerd bind-mounts its data-root onto
 * itself and only undoes that on a clean shutdown; after a SIGKILL the mount stays and the
 * directory cannot be removed ("Device or resource busy").
 */
export function unmountUnderSync(dir: string): void {
  let mounts = '';
  try {
    mounts = readFileSync('/proc/self/mounts', 'utf8');
  } catch {
    return;
  }
  const points = mounts
    .split('\n')
    .map((l) => (l.split(' ')[1] ?? '').replace(/\\040/g, ' '))
    .filter((p) => p === dir || p.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const p of points) {
    try {
      execFileSync('umount', ['-l', p], { stdio: 'ignore', timeout: 10_000 });
    } catch {
      // not ours to unmount, or already gone
    }
  }
}

const pids = new Set<number>();
const dirs = new Set<string>();
let installed = false;

/** Alive and not a zombie (a killed child we can no longer reap from an exit hook is a zombie). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

function killAll(): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  // Removing a data dir while its daemon is still dying races with its last writes.
  const deadline = Date.now() + 2_000;
  while ([...pids].some(running) && Date.now() < deadline) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
  pids.clear();
  for (const dir of dirs) {
    unmountUnderSync(dir);
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // best effort
    }
  }
  dirs.clear();
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      killAll();
      // Re-raise with default handling so the exit status still says "killed by signal".
      process.removeListener(sig, onSignal);
      process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}

export function trackPid(pid: number): void {
  install();
  pids.add(pid);
}

export function untrackPid(pid: number): void {
  pids.delete(pid);
}

export function trackDir(dir: string): void {
  install();
  dirs.add(dir);
}

export function untrackDir(dir: string): void {
  dirs.delete(dir);
}
