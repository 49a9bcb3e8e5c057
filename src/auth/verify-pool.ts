/**
 * bcrypt off the main thread: a cost-12 check is ~240 ms of CPU, which on the event loop would
 * stall every layer transfer in flight. A small pool of worker threads does the work; a bounded
 * queue turns a password-guessing flood into fast "busy" answers instead of unbounded memory and
 * latency.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { WorkerReply, WorkerRequest } from './verify-protocol.js';

export interface VerifyPoolOptions {
  /** Worker threads, 1–2 makes sense: more would compete with the proxy for CPU. */
  size?: number;
  /** Checks allowed to wait for a free worker; beyond that `VerifyBusyError`. */
  maxQueue?: number;
}

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

type Slot = { worker: Worker | null; job: Job | null; lastError: Error | null };

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

export class VerifyPool {
  private readonly slots: Slot[];
  private readonly queue: Job[] = [];
  private readonly maxQueue: number;
  private readonly entry: WorkerEntry;
  private nextId = 1;
  private closed = false;

  constructor(options: VerifyPoolOptions = {}) {
    const size = options.size ?? 1;
    if (!Number.isInteger(size) || size < 1 || size > 8) throw new RangeError('verify pool size must be 1–8');
    this.maxQueue = options.maxQueue ?? 64;
    this.entry = resolveWorkerEntry();
    this.slots = Array.from({ length: size }, () => ({ worker: null, job: null, lastError: null }));
  }

  /** True when `password` matches the bcrypt `hash`; false also for a hash bcrypt cannot read. */
  async compare(password: string, hash: string): Promise<boolean> {
    const value = await this.submit({ id: 0, op: 'compare', password, hash });
    return value === true;
  }

  async hash(password: string, cost: number): Promise<string> {
    return String(await this.submit({ id: 0, op: 'hash', password, cost }));
  }

  /** Checks waiting plus checks running. */
  get pending(): number {
    return this.queue.length + this.slots.filter((s) => s.job).length;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const job of this.queue.splice(0)) job.reject(new VerifyPoolClosedError());
    await Promise.all(
      this.slots.map(async (slot) => {
        const worker = slot.worker;
        slot.worker = null;
        slot.job?.reject(new VerifyPoolClosedError());
        slot.job = null;
        if (worker) await worker.terminate();
      }),
    );
  }

  private submit(request: WorkerRequest): Promise<boolean | string> {
    if (this.closed) return Promise.reject(new VerifyPoolClosedError());
    const idle = this.slots.some((s) => !s.job);
    if (!idle && this.queue.length >= this.maxQueue) return Promise.reject(new VerifyBusyError());
    return new Promise((resolve, reject) => {
      this.queue.push({ request: { ...request, id: this.nextId++ }, resolve, reject });
      this.dispatch();
    });
  }

  private dispatch(): void {
    for (const slot of this.slots) {
      if (this.closed || this.queue.length === 0) return;
      if (slot.job) continue;
      const job = this.queue.shift()!;
      const worker = slot.worker ?? this.start(slot);
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
}
