import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { statusKb } from '../../test/harness/process.js';

/** Linux reports utime/stime in clock ticks; 100 per second on every kernel this runs on (getconf CLK_TCK). */
const TICKS_PER_SECOND = 100;

function statFields(pid: number): string[] | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may contain spaces and parentheses; the fields after the last ')' may not.
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** utime + stime of one process (all its threads), in seconds; 0 when it is gone. */
function cpuSeconds(pid: number): number {
  const f = statFields(pid);
  if (!f) return 0;
  // Fields 14 and 15 of stat(5); f[0] is field 3 (state).
  return (Number(f[11]) + Number(f[12])) / TICKS_PER_SECOND;
}

/**
 * CPU seconds of this process plus its reaped children (cutime + cstime, fields 16 and 17): the
 * bench's own client work, including the curl and openssl it runs for downloads.
 */
export function clientCpuSeconds(): number {
  const f = statFields(process.pid);
  if (!f) return 0;
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / TICKS_PER_SECOND;
}

export function childPids(parent: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const f = statFields(Number(name));
    if (f && Number(f[1]) === parent) out.push(Number(name));
  }
  return out;
}

/** 0 for a process that is gone. */
function peakRssKb(pid: number): number {
  try {
    return statusKb(pid, 'VmHWM');
  } catch {
    return 0;
  }
}

/**
 * Starts a new VmHWM period for `pid` (clear_refs "5", Linux ≥ 4.0). Where the kernel refuses,
 * the peak stays the one since the process started: higher, never flattering.
 */
function resetPeakRss(pid: number): void {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
  } catch {
    // see above
  }
}

/**
 * The processes of one target, measured together (nginx's workers, the registry, the proxy). The
 * member list is re-read at every call: a worker nginx restarts counts from when it appears.
 */
export interface ProcessGroup {
  pids(): number[];
}

export interface GroupWindow {
  /** CPU seconds used by the group since the window opened. */
  cpuSeconds(): number;
  /** The sum of the members' VmHWM in MiB: the peak for one process, an upper bound for several. */
  peak(): { sumMiB: number };
}

/** Opens a measuring window: CPU counters are read now, and every member's peak RSS is reset. */
export function openWindow(group: ProcessGroup): GroupWindow {
  const startCpu = new Map<number, number>();
  for (const pid of group.pids()) {
    startCpu.set(pid, cpuSeconds(pid));
    resetPeakRss(pid);
  }
  return {
    cpuSeconds() {
      let total = 0;
      for (const pid of group.pids()) total += cpuSeconds(pid) - (startCpu.get(pid) ?? 0);
      return total;
    },
    peak() {
      return { sumMiB: group.pids().map(peakRssKb).reduce((a, b) => a + b, 0) / 1024 };
    },
  };
}
