import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { HOP_BY_HOP } from '../proxy/headers.js';
import type { Route } from '../registry/route.js';
import { cachePlan, type CachePlan } from './plan.js';
import { ResponseStore, type CachedAnswer } from './store.js';

export type ReadPlan = Extract<CachePlan, { kind: 'read' }>;

/** Sees the registry's answer to a forwarded request (before its body flows). */
export type UpstreamTap = (upstream: IncomingMessage) => void;

/** distribution refuses manifests over 4 MiB; nothing cacheable is bigger. */
const MAX_ANSWER_BYTES = 4 * 1024 * 1024;

/** Never replayed: they describe one connection or one moment, not the answer. */
const NOT_REPLAYED = new Set([...HOP_BY_HOP, 'transfer-encoding', 'date', 'age']);

/**
 * Short-lived answers for manifests and blob HEADs, so that a fleet pulling the same tag (a
 * deploy, a CI matrix) costs the registry one request per key per TTL instead of one per node.
 * Only reached after the caller has been authorized for the request, so an entry is only ever
 * shown to callers allowed to see it.
 */
export class ResponseCache {
  private readonly store: ResponseStore;
  private readonly now: () => number;
  private readonly onWrite: ((repository: string) => void) | undefined;
  private shared = true;

  /** `onWrite` tells other replicas (see state/redis-invalidations.ts). */
  constructor(opts: { ttlSeconds: number; maxMegabytes: number; now?: () => number; onWrite?: (repository: string) => void }) {
    this.now = opts.now ?? Date.now;
    this.onWrite = opts.onWrite;
    const maxBytes = opts.maxMegabytes * 1024 * 1024;
    this.store = new ResponseStore({
      ttlMs: opts.ttlSeconds * 1000,
      maxBytes,
      maxEntryBytes: Math.min(MAX_ANSWER_BYTES + 1024, Math.floor(maxBytes / 4)),
      now: this.now,
    });
  }

  plan(method: string, route: Route, headers: IncomingHttpHeaders): CachePlan | null {
    const plan = cachePlan(method, route, headers);
    return plan?.kind === 'read' && !this.shared ? null : plan;
  }

  /**
   * False while the invalidations between replicas are away: another replica's push could then
   * go unheard, so nothing is answered from memory (and what was kept is dropped) until they
   * are back.
   */
  setShared(up: boolean): void {
    this.shared = up;
    if (!up) this.store.clear();
  }

  /**
   * Answers from the cache when it can — after waiting for a fill of the same key that is under
   * way — and returns null. Otherwise returns the tap that fills the cache from the registry's
   * answer to the forwarded request.
   */
  async serve(plan: ReadPlan, res: ServerResponse): Promise<UpstreamTap | null> {
    let answer = this.store.lookup(plan.key, plan.needsBody);
    const pending = answer ? undefined : this.store.pending(plan.key);
    if (pending) {
      await pending;
      answer = this.store.lookup(plan.key, plan.needsBody);
    }
    if (answer) {
      replay(res, answer, plan.needsBody, this.now());
      return null;
    }
    // Whoever waited and still missed asks the registry itself: a failing key must not queue callers one behind the other.
    return this.fill(plan, res, pending === undefined);
  }

  /**
   * For a write: drops the repository's answers now, again when the registry has answered (before
   * the client can see that answer and ask again), and once more when the exchange is over.
   */
  invalidateAround(repository: string, res: ServerResponse): UpstreamTap {
    this.written(repository);
    res.once('close', () => this.written(repository));
    return () => this.written(repository);
  }

  /** A write to the repository seen by another replica. */
  writtenElsewhere(repository: string): void {
    this.store.invalidate(repository);
  }

  private written(repository: string): void {
    this.store.invalidate(repository);
    this.onWrite?.(repository);
  }

  private fill(plan: ReadPlan, res: ServerResponse, coalesce: boolean): UpstreamTap {
    const mark = this.store.mark();
    const end = coalesce ? this.store.beginFill(plan.key) : () => {};
    // Covers every way the exchange can end without a storable answer: refused, timed out, client gone.
    res.once('close', end);
    return (upstream) => {
      if (!storable(upstream)) return end();
      const headers = replayableHeaders(upstream.headers);
      if (!plan.needsBody) {
        if (headers['content-length'] !== undefined) this.store.store(plan.key, plan.repository, mark, { headers, body: null });
        return end();
      }
      const declared = Number(upstream.headers['content-length'] ?? 0);
      if (declared > this.store.maxEntryBytes) return end();
      const chunks: Buffer[] = [];
      let length = 0;
      const collect = (chunk: Buffer): void => {
        length += chunk.length;
        if (length > this.store.maxEntryBytes) {
          upstream.off('data', collect);
          chunks.length = 0;
          return end();
        }
        chunks.push(chunk);
      };
      upstream.on('data', collect);
      upstream.once('end', () => {
        if (upstream.complete && length <= this.store.maxEntryBytes) {
          this.store.store(plan.key, plan.repository, mark, { headers, body: Buffer.concat(chunks, length) });
        }
        end();
      });
      upstream.once('close', end);
    };
  }
}

function storable(upstream: IncomingMessage): boolean {
  if (upstream.statusCode !== 200) return false;
  const h = upstream.headers;
  // Per-caller or redirecting answers are not the same for everyone.
  if (h['set-cookie'] !== undefined || h.location !== undefined || h.vary === '*') return false;
  return !/no-store|private/i.test(h['cache-control'] ?? '');
}

function replayableHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !NOT_REPLAYED.has(name)) out[name] = value;
  }
  return out;
}

function replay(res: ServerResponse, answer: CachedAnswer, withBody: boolean, now: number): void {
  const headers: OutgoingHttpHeaders = { ...answer.headers, age: String(Math.floor((now - answer.storedAt) / 1000)) };
  if (answer.body !== null) headers['content-length'] = answer.body.length;
  res.writeHead(200, headers);
  res.end(withBody ? answer.body : undefined);
}
