/**
 * A file the operator edits while the proxy runs (htpasswd, htgroup): read again whenever it may
 * have changed, by hand, by a tool, by rename, or by a secret mount swapping a symlinked directory.
 *
 * The directory is watched, not the file: editors and `passwd` replace the file by rename, which
 * leaves a watch on the old inode silent, and a file that does not exist yet cannot be watched at
 * all. Polling of inode/size/mtime backs the watch up on file systems where fs.watch says nothing
 * (NFS, some container mounts). Reads are debounced (editors write in several steps) and never
 * overlap; the owner gets the bytes or the error and decides what they mean.
 */
import { watch, type FSWatcher } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';

export interface WatchOptions {
  debounceMs?: number;
  pollIntervalMs?: number;
  /** Use fs.watch besides polling (default true; false leaves polling alone, e.g. to test it). */
  watch?: boolean;
}

export type FileRead = { ok: true; bytes: Buffer } | { ok: false; error: NodeJS.ErrnoException };

export class WatchedFile {
  readonly file: string;
  private statSignature: string | null = null;
  private watcher: FSWatcher | null = null;
  private pollTimer: NodeJS.Timeout | null = null;
  private debounceTimer: NodeJS.Timeout | null = null;
  private reading: Promise<void> | null = null;
  private readAgain = false;
  private closed = false;
  private readonly debounceMs: number;
  private readonly pollIntervalMs: number;
  private readonly useFsWatch: boolean;

  constructor(
    file: string,
    private readonly onRead: (read: FileRead) => void,
    options: WatchOptions = {},
  ) {
    this.file = path.resolve(file);
    this.debounceMs = options.debounceMs ?? 200;
    this.pollIntervalMs = options.pollIntervalMs ?? 2000;
    this.useFsWatch = options.watch ?? true;
  }

  /** Reads once now, then keeps watching. */
  async start(): Promise<void> {
    await this.read();
    this.watchDirectory();
    this.pollTimer = setInterval(() => void this.poll(), this.pollIntervalMs);
    this.pollTimer.unref();
  }

  /** Read the file now (also used by the watcher; safe to call concurrently). */
  async read(): Promise<void> {
    if (this.reading) {
      this.readAgain = true;
      return this.reading;
    }
    this.reading = (async () => {
      do {
        this.readAgain = false;
        this.onRead(await this.readOnce());
      } while (this.readAgain && !this.closed);
    })().finally(() => {
      this.reading = null;
    });
    return this.reading;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.watcher?.close();
    this.watcher = null;
    if (this.pollTimer) clearInterval(this.pollTimer);
    if (this.debounceTimer) clearTimeout(this.debounceTimer);
    await this.reading;
  }

  private async readOnce(): Promise<FileRead> {
    try {
      this.statSignature = signatureOf(await stat(this.file));
      return { ok: true, bytes: await readFile(this.file) };
    } catch (err) {
      const error = err as NodeJS.ErrnoException;
      if (error.code === 'ENOENT') this.statSignature = 'missing';
      return { ok: false, error };
    }
  }

  private watchDirectory(): void {
    if (this.closed || this.watcher || !this.useFsWatch) return;
    try {
      this.watcher = watch(path.dirname(this.file), { persistent: false }, () => this.scheduleRead());
      this.watcher.on('error', () => {
        this.watcher?.close();
        this.watcher = null;
      });
    } catch {
      this.watcher = null;
    }
  }

  private async poll(): Promise<void> {
    if (this.closed) return;
    this.watchDirectory();
    let signature: string;
    try {
      signature = signatureOf(await stat(this.file));
    } catch (err) {
      signature = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : 'unreadable';
    }
    if (signature !== this.statSignature) {
      this.statSignature = signature;
      this.scheduleRead();
    }
  }

  private scheduleRead(): void {
    if (this.closed) return;
    if (this.debounceTimer) clearTimeout(this.debounceTimer);
    this.debounceTimer = setTimeout(() => {
      this.debounceTimer = null;
      void this.read();
    }, this.debounceMs);
    this.debounceTimer.unref();
  }
}

function signatureOf(s: { ino: number; size: number; mtimeMs: number }): string {
  return `${s.ino}:${s.size}:${s.mtimeMs}`;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** null for binary content: a half-copied or wrong file must not be half-used. */
export function decodeText(bytes: Buffer): string | null {
  try {
    const text = strictUtf8.decode(bytes);
    return text.includes('\u0000') ? null : text;
  } catch {
    return null;
  }
}
