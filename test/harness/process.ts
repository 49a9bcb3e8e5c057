import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { trackPid, untrackPid } from './cleanup.js';

/** Keeps only the last `maxBytes` of a stream, so a chatty daemon cannot grow memory without bound. */
export class TailBuffer {
  private chunks: Buffer[] = [];
  private size = 0;
  constructor(private readonly maxBytes = 64 * 1024) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size - this.chunks[0]!.length >= this.maxBytes) {
      this.size -= this.chunks.shift()!.length;
    }
  }

  toString(): string {
    const all = Buffer.concat(this.chunks);
    return all.subarray(Math.max(0, all.length - this.maxBytes)).toString('utf8');
  }
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface LongProcessOptions {
  /** Shown in error messages ("registry exited before it was ready"). */
  name: string;
  /** Merged over process.env. */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  tailBytes?: number;
  onStdoutLine?: (line: string) => void;
  onStderrLine?: (line: string) => void;
}

export interface LongProcess {
  readonly name: string;
  readonly pid: number;
  readonly child: ChildProcess;
  stdoutTail(): string;
  stderrTail(): string;
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<ExitInfo>;
  /** null while running. */
  exitInfo(): ExitInfo | null;
  /** SIGTERM (or `signal`), then SIGKILL to the whole process group after `graceMs`. Idempotent. */
  stop(opts?: { signal?: NodeJS.Signals; graceMs?: number }): Promise<ExitInfo>;
}

function splitLines(stream: Readable, tail: TailBuffer, onLine?: (line: string) => void): void {
  let partial = '';
  stream.on('data', (chunk: Buffer) => {
    tail.push(chunk);
    if (!onLine) return;
    partial += chunk.toString('utf8');
    const lines = partial.split('\n');
    partial = lines.pop()!;
    for (const line of lines) onLine(line);
  });
  stream.on('end', () => {
    if (onLine && partial !== '') onLine(partial);
    partial = '';
  });
}

/** A memory figure of a process from /proc/<pid>/status, in KiB: VmRSS now, VmHWM the peak (Linux). */
export function statusKb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  // Synchronous on purpose: memory assertions read it inline, and procfs reads do not block.
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
  if (!m) throw new Error(`no ${field} in /proc/${pid}/status (process gone?)`);
  return Number(m[1]);
}

/** Open file descriptors of a process (Linux). */
export function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/**
 * Like Promise.race with a timer, but the timer is cleared so it cannot hold the process open;
 * while it runs it keeps this process alive (the children spawnLong starts are unref'd).
 */
export async function raceTimeout<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<'timeout'>((resolve) => (timer = setTimeout(resolve, ms, 'timeout')));
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}

export function spawnLong(cmd: string, args: readonly string[], opts: LongProcessOptions): LongProcess {
  // A process group of its own lets stop() take down grandchildren (dockerd's containerd)
  // when the child ignores SIGTERM.
  const child = spawn(cmd, args, {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const stdout = new TailBuffer(opts.tailBytes);
  const stderr = new TailBuffer(opts.tailBytes);
  splitLines(child.stdout!, stdout, opts.onStdoutLine);
  splitLines(child.stderr!, stderr, opts.onStderrLine);

  let exit: ExitInfo | null = null;
  let spawnError: Error | null = null;
  const exited = new Promise<ExitInfo>((resolve) => {
    child.once('error', (err) => {
      spawnError = err;
      exit = { code: null, signal: null };
      resolve(exit);
    });
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      if (child.pid !== undefined) untrackPid(child.pid);
      resolve(exit);
    });
  });

  if (child.pid === undefined) {
    // spawn() reports ENOENT asynchronously; surface it with the command name.
    throw new Error(`${opts.name}: could not start ${cmd}`);
  }
  const pid = child.pid;
  trackPid(pid);
  // A test that forgets stop() should not hang the runner forever; the exit hook in cleanup.ts
  // still kills the child when the test process ends.
  child.unref();
  (child.stdout as unknown as { unref?: () => void }).unref?.();
  (child.stderr as unknown as { unref?: () => void }).unref?.();

  let stopping: Promise<ExitInfo> | null = null;
  const stop = (o: { signal?: NodeJS.Signals; graceMs?: number } = {}): Promise<ExitInfo> => {
    if (stopping) return stopping;
    stopping = (async () => {
      if (exit) return exit;
      const graceMs = o.graceMs ?? 10_000;
      try {
        process.kill(pid, o.signal ?? 'SIGTERM');
      } catch {
        // exited between the check and the kill
      }
      const first = await raceTimeout(exited, graceMs);
      if (first === 'timeout') {
        try {
          process.kill(-pid, 'SIGKILL');
        } catch {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // gone
          }
        }
        const last = await raceTimeout(exited, 5_000);
        if (last === 'timeout') throw new Error(`${opts.name} (pid ${pid}) survived SIGKILL`);
        return last;
      }
      return first;
    })();
    return stopping;
  };

  return {
    name: opts.name,
    pid,
    child,
    stdoutTail: () => stdout.toString(),
    stderrTail: () => (spawnError ? `${String(spawnError)}\n` : '') + stderr.toString(),
    exited,
    exitInfo: () => exit,
    stop,
  };
}

function lastLines(text: string, n: number): string {
  const lines = text.trimEnd().split('\n');
  return lines.slice(-n).join('\n');
}

/** An Error whose message carries the tail of the process's output, which is where the real cause usually is. */
export function processError(proc: LongProcess, message: string): Error {
  const err = proc.stderrTail();
  const out = proc.stdoutTail();
  let text = `${proc.name}: ${message}`;
  if (err.trim()) text += `\n--- ${proc.name} stderr (tail) ---\n${lastLines(err, 40)}`;
  if (out.trim()) text += `\n--- ${proc.name} stdout (tail) ---\n${lastLines(out, 20)}`;
  return new Error(text);
}

export interface WaitOptions {
  timeoutMs: number;
  intervalMs?: number;
  /** What we are waiting for, for the error message. */
  what: string;
  /** If it exits while we wait, fail at once instead of waiting out the timeout. */
  proc?: LongProcess;
}

/** Polls `check` until it returns true. Errors thrown by `check` count as "not yet". */
export async function waitUntil(check: () => Promise<boolean>, opts: WaitOptions): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  let lastError: unknown = null;
  for (;;) {
    const ex = opts.proc?.exitInfo();
    if (opts.proc && ex) {
      throw processError(opts.proc, `exited (code ${ex.code}, signal ${ex.signal}) while waiting for ${opts.what}`);
    }
    try {
      if (await check()) return;
      lastError = null;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const why = lastError ? ` (last error: ${lastError instanceof Error ? lastError.message : String(lastError)})` : '';
      const msg = `timed out after ${opts.timeoutMs} ms waiting for ${opts.what}${why}`;
      throw opts.proc ? processError(opts.proc, msg) : new Error(msg);
    }
    await sleep(opts.intervalMs ?? 50);
  }
}

export interface RunOptions {
  /** Merged over process.env. */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Killed with SIGKILL after this long; the result then has timedOut = true. Default 60 s. */
  timeoutMs?: number;
  stdin?: string | Buffer;
  /** Throw (with stderr) unless the exit code is 0. */
  check?: boolean;
  /** Strings replaced by *** in error messages (passwords that had to go on argv). */
  redact?: string[];
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  durationMs: number;
}

function redactText(text: string, secrets: readonly string[] | undefined): string {
  let out = text;
  for (const s of secrets ?? []) if (s) out = out.split(s).join('***');
  return out;
}

/** Runs a short command to completion. Rejects only when it cannot be spawned, or with `check`. */
export async function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const started = Date.now();
  const child = spawn(cmd, args, {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (c: Buffer) => out.push(c));
  child.stderr.on('data', (c: Buffer) => err.push(c));
  // A command that exits without reading stdin makes our write fail with EPIPE; that is its business.
  child.stdin.on('error', () => {});
  child.stdin.end(opts.stdin ?? '');

  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, opts.timeoutMs ?? 60_000);

  const result = await new Promise<RunResult>((resolve, reject) => {
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${cmd}: ${e.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        timedOut,
        durationMs: Date.now() - started,
      });
    });
  });

  if (opts.check && (result.code !== 0 || timedOut)) {
    const line = redactText([cmd, ...args].join(' '), opts.redact);
    const why = timedOut ? `timed out after ${opts.timeoutMs ?? 60_000} ms` : `exited with ${result.code ?? result.signal}`;
    throw new Error(
      `${line}: ${why}\n--- stderr ---\n${redactText(lastLines(result.stderr, 40), opts.redact)}` +
        (result.stdout.trim() ? `\n--- stdout ---\n${redactText(lastLines(result.stdout, 20), opts.redact)}` : ''),
    );
  }
  return result;
}
