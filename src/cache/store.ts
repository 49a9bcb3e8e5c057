import type { OutgoingHttpHeaders } from 'node:http';

/** A registry answer (status 200) as it can be replayed. */
export interface CachedAnswer {
  headers: OutgoingHttpHeaders;
  /** Null when only a HEAD was seen: such an entry answers HEADs only. */
  body: Buffer | null;
  storedAt: number;
}

interface Entry extends CachedAnswer {
  repository: string;
  expiresAt: number;
  bytes: number;
}

/** Rough per-entry overhead beyond the body: key, header strings, bookkeeping. */
const ENTRY_OVERHEAD_BYTES = 1024;
const MAX_REMEMBERED_WRITES = 10_000;

/**
 * Registry answers kept for a few seconds, bounded in bytes (least recently used go first).
 *
 * A write to a repository (see plan.ts) drops its entries, at the start of the write and again
 * when it has been answered. A fill remembers when it began and is thrown away if its repository
 * was written meanwhile: a GET that raced a tag move cannot put the old manifest back after it.
 */
export class ResponseStore {
  private readonly entries = new Map<string, Entry>();
  private readonly byRepository = new Map<string, Set<string>>();
  /** Writes are numbered; per repository the number of its last write, forgotten in bulk when the map grows. */
  private writes = 0;
  private readonly lastWrite = new Map<string, number>();
  /** Every repository counts as written at this number: what was forgotten must not look unwritten. */
  private forgottenUpTo = 0;
  private readonly inFlight = new Map<string, Promise<void>>();
  private bytes = 0;

  constructor(
    private readonly opts: { ttlMs: number; maxBytes: number; maxEntryBytes: number; now: () => number },
  ) {}

  private now(): number {
    return this.opts.now();
  }

  get sizeBytes(): number {
    return this.bytes;
  }

  get maxEntryBytes(): number {
    return this.opts.maxEntryBytes;
  }

  lookup(key: string, needsBody: boolean): CachedAnswer | null {
    const entry = this.entries.get(key);
    if (!entry) return null;
    if (entry.expiresAt <= this.now()) {
      this.remove(key, entry);
      return null;
    }
    if (needsBody && entry.body === null) return null;
    // Re-inserting keeps the Map in least-recently-used order for eviction.
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry;
  }

  /** Taken when a fill starts, handed back to store(). */
  mark(): number {
    return this.writes;
  }

  /** Keeps an answer unless the repository was written since `mark`; a HEAD's entry never replaces a GET's. */
  store(key: string, repository: string, mark: number, answer: Omit<CachedAnswer, 'storedAt'>): boolean {
    if ((this.lastWrite.get(repository) ?? this.forgottenUpTo) > mark) return false;
    const bytes = (answer.body?.length ?? 0) + ENTRY_OVERHEAD_BYTES;
    if (bytes > this.opts.maxEntryBytes) return false;
    const existing = this.entries.get(key);
    if (existing) {
      if (answer.body === null && existing.body !== null && existing.expiresAt > this.now()) return false;
      this.remove(key, existing);
    }
    const storedAt = this.now();
    this.entries.set(key, { ...answer, storedAt, repository, expiresAt: storedAt + this.opts.ttlMs, bytes });
    this.bytes += bytes;
    let keys = this.byRepository.get(repository);
    if (!keys) this.byRepository.set(repository, (keys = new Set()));
    keys.add(key);
    for (const [oldKey, old] of this.entries) {
      if (this.bytes <= this.opts.maxBytes) break;
      this.remove(oldKey, old);
    }
    return true;
  }

  invalidate(repository: string): void {
    this.writes++;
    if (this.lastWrite.size >= MAX_REMEMBERED_WRITES) {
      this.lastWrite.clear();
      this.forgottenUpTo = this.writes;
    }
    this.lastWrite.set(repository, this.writes);
    const keys = this.byRepository.get(repository);
    if (!keys) return;
    for (const key of keys) {
      const entry = this.entries.get(key);
      if (entry) this.remove(key, entry);
    }
  }

  /** Drops every entry, and every fill under way is thrown away as if its repository had been written. */
  clear(): void {
    this.writes++;
    this.lastWrite.clear();
    this.forgottenUpTo = this.writes;
    this.entries.clear();
    this.byRepository.clear();
    this.bytes = 0;
  }

  /** The fill under way for `key`, if any: concurrent misses wait for one registry answer instead of each asking. */
  pending(key: string): Promise<void> | undefined {
    return this.inFlight.get(key);
  }

  /** Marks a fill as under way; the returned function ends it (idempotent). */
  beginFill(key: string): () => void {
    let settle!: () => void;
    const done = new Promise<void>((resolve) => (settle = resolve));
    this.inFlight.set(key, done);
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      if (this.inFlight.get(key) === done) this.inFlight.delete(key);
      settle();
    };
  }

  private remove(key: string, entry: Entry): void {
    this.entries.delete(key);
    this.bytes -= entry.bytes;
    const keys = this.byRepository.get(entry.repository);
    if (keys) {
      keys.delete(key);
      if (keys.size === 0) this.byRepository.delete(entry.repository);
    }
  }
}
