/**
 * bcrypt off the main thread: a cost-12 check is ~240 ms of CPU, which on the event loop would
 * stall every layer transfer in flight. A small pool of worker threads does the work; a bounded
 * queue turns a password-guessing flood into fast "busy" answers instead of unbounded memory and
 * latency.
 *
 * The queue is shared fairly between clients: each client has its own line, the workers serve the
 * lines in turn, one client may hold at most `maxQueuePerClient` places, and when the whole queue
 * is full the newest check of the client holding the most places gives way to a client with
 * fewer. A flood from one address (or a few) therefore gets "busy" while everyone else's first
 * login waits behind at most one check per other active client.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { WorkerReply, WorkerRequest } from './verify-protocol.js';

export interface VerifyPoolOptions {
  /** Worker threads; default `defaultPoolSize()`. */
  size?: number;
  /** Checks allowed to wait for a free worker; beyond that `VerifyBusyError`. */
  maxQueue?: number;
  /** Checks one client may have waiting. */
  maxQueuePerClient?: number;
  /** A worker without a check for this long is stopped; the next check starts one again. */
  idleMs?: number;
}

/**
 * A worker thread holds ~10 MiB (its own V8 heap and bcrypt) for as long as it lives; starting one
 * costs ~30 ms against a ~100 ms cost-10 check. Logins come in bursts (a CI run, a morning), and
 * what a login found is remembered, so a pool idle for a minute gives its memory back.
 */
const DEFAULT_IDLE_MS = 60_000;

/** The pool is saturated: answer 429 rather than queue more CPU work. */
export class VerifyBusyError extends Error {
  readonly code = 'VERIFY_BUSY';
  constructor() {
    super('password verification queue is full');
  }
}

export class VerifyPoolClosedError extends Error {
  readonly code = 'VERIFY_POOL_CLOSED';
  constructor() {
    super('verify pool is closed');
  }
}

type Job = {
  request: WorkerRequest;
  resolve: (value: boolean | string) => void;
  reject: (err: Error) => void;
};

type Slot = { worker: Worker | null; job: Job | null; lastError: Error | null; idle: NodeJS.Timeout | null };

export interface WorkerEntry {
  url: URL;
  /** The entry is TypeScript source: we run from src/ under tsx, not from compiled dist/. */
  typescript: boolean;
}

/**
 * The worker file sits next to this module: `verify-worker.js` in dist/, `verify-worker.ts` when
 * running from source, where `import.meta.url` points at the .ts module.
 */
export function resolveWorkerEntry(moduleUrl: string = import.meta.url): WorkerEntry {
  const js = new URL('./verify-worker.js', moduleUrl);
  if (existsSync(fileURLToPath(js))) return { url: js, typescript: false };
  const ts = new URL('./verify-worker.ts', moduleUrl);
  if (existsSync(fileURLToPath(ts))) return { url: ts, typescript: true };
  throw new Error(`verify worker not found next to ${fileURLToPath(moduleUrl)}`);
}

function spawnWorker(entry: WorkerEntry): Worker {
  if (!entry.typescript) return new Worker(entry.url);
  // Node 20 does not run the parent's `--import tsx` loader hooks inside worker threads, so a .ts
  // entry would fail with ERR_UNKNOWN_FILE_EXTENSION; register tsx in the worker first. Only the
  // source tree takes this path, and tsx is installed wherever the source tree runs.
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const bootstrap = `import(${JSON.stringify(tsxApi)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.url.href)}); });`;
  return new Worker(bootstrap, { eval: true });
}

/**
 * One core stays with the proxy. Measured on 2 cores: a second worker raised cost-10 checks from
 * 13 to 15–17 a second but took 30 % of the main thread's CPU, i.e. from every transfer in flight.
 */
export function defaultPoolSize(cores = availableParallelism()): number {
  return Math.max(1, Math.min(4, cores - 1));
}

export class VerifyPool {
  private readonly slots: Slot[];
  /** One line per client; Map order is the turn order (a served client moves to the back). */
  private readonly lines = new Map<string, Job[]>();
  private waiting = 0;
  private readonly maxQueue: number;
  private readonly maxQueuePerClient: number;
  private readonly entry: WorkerEntry;
  private nextId = 1;
  private closed = false;
  private readonly idleMs: number;

  constructor(options: VerifyPoolOptions = {}) {
    const size = options.size ?? defaultPoolSize();
    if (!Number.isInteger(size) || size < 1 || size > 8) throw new RangeError('verify pool size must be 1–8');
    this.maxQueue = options.maxQueue ?? 64;
    this.maxQueuePerClient = options.maxQueuePerClient ?? 4;
    this.idleMs = options.idleMs ?? DEFAULT_IDLE_MS;
    this.entry = resolveWorkerEntry();
    this.slots = Array.from({ length: size }, () => ({ worker: null, job: null, lastError: null, idle: null }));
  }

  /**
   * True when `password` matches the bcrypt `hash`; false also for a hash bcrypt cannot read.
   * `client` is whose line the check waits in (the caller's address).
   */
  async compare(password: string, hash: string, client = ''): Promise<boolean> {
    const value = await this.submit({ id: 0, op: 'compare', password, hash }, client);
    return value === true;
  }

  async hash(password: string, cost: number): Promise<string> {
    return String(await this.submit({ id: 0, op: 'hash', password, cost }, ''));
  }

  /** Checks waiting plus checks running. */
  get pending(): number {
    return this.waiting + this.slots.filter((s) => s.job).length;
  }

  /** Worker threads running now. */
  get workers(): number {
    return this.slots.filter((s) => s.worker).length;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const line of this.lines.values()) for (const job of line) job.reject(new VerifyPoolClosedError());
    this.lines.clear();
    this.waiting = 0;
    await Promise.all(
      this.slots.map(async (slot) => {
        const worker = slot.worker;
        slot.worker = null;
        if (slot.idle) clearTimeout(slot.idle);
        slot.job?.reject(new VerifyPoolClosedError());
        slot.job = null;
        if (worker) await worker.terminate();
      }),
    );
  }

  private submit(request: WorkerRequest, client: string): Promise<boolean | string> {
    if (this.closed) return Promise.reject(new VerifyPoolClosedError());
    const line = this.lines.get(client) ?? [];
    const idle = this.slots.some((s) => !s.job);
    if (!idle) {
      if (line.length >= this.maxQueuePerClient) return Promise.reject(new VerifyBusyError());
      if (this.waiting >= this.maxQueue && !this.makeRoomFor(line.length)) return Promise.reject(new VerifyBusyError());
    }
    return new Promise((resolve, reject) => {
      line.push({ request: { ...request, id: this.nextId++ }, resolve, reject });
      this.lines.set(client, line);
      this.waiting++;
      this.dispatch();
    });
  }

  /** The newest check of the longest line gives way, if that line is longer than the newcomer's. */
  private makeRoomFor(newcomerWaiting: number): boolean {
    let longest: Job[] | null = null;
    for (const line of this.lines.values()) if (!longest || line.length > longest.length) longest = line;
    if (!longest || longest.length <= newcomerWaiting + 1) return false;
    longest.pop()!.reject(new VerifyBusyError());
    this.waiting--;
    return true;
  }

  /** The client whose turn it is gives up its oldest check and goes to the back. */
  private next(): Job | null {
    for (const [client, line] of this.lines) {
      this.lines.delete(client);
      const job = line.shift();
      if (line.length > 0) this.lines.set(client, line);
      if (job) {
        this.waiting--;
        return job;
      }
    }
    return null;
  }

  private dispatch(): void {
    for (const slot of this.slots) {
      if (this.closed || this.waiting === 0) return;
      if (slot.job) continue;
      const job = this.next()!;
      const worker = slot.worker ?? this.start(slot);
      if (slot.idle) clearTimeout(slot.idle);
      slot.idle = null;
      slot.job = job;
      // Referenced only while working: an idle pool must not keep the process alive, a busy one must.
      worker.ref();
      worker.postMessage(job.request);
    }
  }

  private start(slot: Slot): Worker {
    const worker = spawnWorker(this.entry);
    slot.worker = worker;
    slot.lastError = null;
    worker.unref();
    worker.on('message', (reply: WorkerReply) => {
      const job = slot.job;
      if (!job || job.request.id !== reply.id) return;
      slot.job = null;
      worker.unref();
      if (reply.ok) job.resolve(reply.value);
      else job.reject(new Error(`bcrypt failed: ${reply.error}`));
      this.dispatch();
      if (!slot.job) this.retireWhenIdle(slot, worker);
    });
    worker.on('error', (err) => {
      slot.lastError = err;
    });
    worker.on('exit', (code) => {
      if (slot.worker !== worker) return;
      // A crashed worker fails its own check only; the next check gets a fresh worker.
      slot.worker = null;
      const job = slot.job;
      slot.job = null;
      job?.reject(slot.lastError ?? new Error(`verify worker exited with code ${code}`));
      this.dispatch();
    });
    return worker;
  }

  private retireWhenIdle(slot: Slot, worker: Worker): void {
    if (slot.idle) clearTimeout(slot.idle);
    slot.idle = setTimeout(() => {
      slot.idle = null;
      if (slot.job || slot.worker !== worker) return;
      slot.worker = null;
      void worker.terminate();
    }, this.idleMs);
    slot.idle.unref();
  }
}
