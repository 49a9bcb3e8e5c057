/**
 * Graceful stop: on SIGTERM `/readyz` turns unready at once and no new work is taken, but pushes
 * under way may finish for up to `drainSeconds`.
 *
 * A push is many requests (HEAD, POST, PATCH, PUT per blob, then the manifest PUT), and clients
 * do not keep one connection for it: skopeo opens a new connection for each blob's commit PUT
 * (measured here). So the listener stays open while draining, and each request is judged: one
 * that continues a push still open for its client and repository (a request of it under way, or
 * blobs checked or sent and no manifest put since), or a ping or token request from a client
 * with such a push, is served; everything else gets `503 SHUTTING_DOWN` and `Connection: close`.
 * Idle connections that no open push has used are closed at once. When nothing runs and no push
 * is open (or none has moved for a while), the proxy stops; when `drainSeconds` are over, what
 * still runs is cut and named in the log.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Server, Socket } from 'node:net';
import tls from 'node:tls';
import type { Logger } from '../observe/logger.js';
import type { Route } from '../registry/route.js';

/** What the log says about a request that had to be cut. */
export interface RequestSummary {
  method: string;
  path: string;
  client: string;
  user: string | null;
}

interface InFlight {
  summary: () => RequestSummary;
  onCut: () => void;
}

interface Connection {
  inFlight: Set<InFlight>;
  /** When the last answer went out (or the connection came), for the idle grace. */
  idleSince: number;
  /** Push keys (client + repository) this connection has carried requests for. */
  pushes: Set<string>;
}

interface Push {
  /** Requests of this push under way. */
  inFlight: number;
  /** A blob arrived for this push and no manifest has been put since. */
  awaitingManifest: boolean;
  /** When a request of it last came (Date.now()). */
  seen: number;
}

/** Pushes silent this long are forgotten (a client that died mid-push). */
const PUSH_IDLE_MS = 10 * 60_000;
const MAX_PUSHES = 10_000;
/** While draining with nothing in flight, a push silent this long is taken as abandoned. */
const DRAIN_QUIET_MS = 5_000;
/** An idle connection is closed only after this long: a fresh one has its first request on the way. */
const IDLE_GRACE_MS = 1_000;
const DRAIN_CHECK_MS = 250;

export class Drain {
  private readonly connections = new Map<Socket, Connection>();
  /** Every accepted socket, before TLS too: handshakes still under way are closed at the end. */
  private readonly accepted = new Set<Socket>();
  /** Open pushes by key; Map order is least recently seen first. */
  private readonly pushes = new Map<string, Push>();
  private readonly servers: Server[] = [];
  /** Answers given `Connection: close` by the drain (and so the drain's to take back). */
  private readonly closing = new WeakSet<ServerResponse>();
  private state: 'serving' | 'draining' | 'done' = 'serving';
  private finished: (() => void) | null = null;
  private deadline: NodeJS.Timeout | null = null;
  private checker: NodeJS.Timeout | null = null;
  private lastActivity = 0;

  constructor(private readonly opts: { drainSeconds: number; logger: Logger }) {}

  get draining(): boolean {
    return this.state !== 'serving';
  }

  /** Track the connections of a listener whose requests pass `admit`. */
  watch(server: Server): void {
    this.servers.push(server);
    server.on('connection', (socket: Socket) => {
      this.accepted.add(socket);
      socket.once('close', () => this.accepted.delete(socket));
    });
    server.on(server instanceof tls.Server ? 'secureConnection' : 'connection', (socket: Socket) => {
      this.connections.set(socket, { inFlight: new Set(), pushes: new Set(), idleSince: Date.now() });
      socket.once('close', () => this.connections.delete(socket));
    });
  }

  /** Every request, as it is accepted: it counts as in flight until its response closes. */
  admit(req: IncomingMessage, res: ServerResponse, summary: () => RequestSummary, onCut: () => void): void {
    const connection = this.connections.get(req.socket);
    if (!connection) return;
    const entry: InFlight = { summary, onCut };
    connection.inFlight.add(entry);
    this.lastActivity = Date.now();
    if (this.draining && !this.needed(connection) && res.shouldKeepAlive) {
      res.shouldKeepAlive = false;
      this.closing.add(res);
    }
    res.once('close', () => {
      connection.inFlight.delete(entry);
      connection.idleSince = Date.now();
      this.lastActivity = Date.now();
      if (this.draining) {
        this.closeIfDone(req.socket, connection);
        this.checkDone();
      }
    });
  }

  /**
   * While draining: may this request run? `repository` is the request's repository, null for a
   * ping or a token request. Never refuses while serving.
   */
  continues(client: string, repository: string | null): boolean {
    if (!this.draining) return true;
    this.forgetStale();
    if (repository !== null) return this.pushes.has(`${client}\0${repository}`);
    const prefix = `${client}\0`;
    for (const key of this.pushes.keys()) if (key.startsWith(prefix)) return true;
    return false;
  }

  /** An authorized request on a repository: the step of a push it is, if any, once answered. */
  repositoryRequest(req: IncomingMessage, res: ServerResponse, client: string, route: Route & { kind: 'repository' }): void {
    const key = `${client}\0${route.name}`;
    const connection = this.connections.get(req.socket);
    connection?.pushes.add(key);
    const method = req.method;
    const step = route.endpoint === 'upload' || (route.endpoint === 'blob' && method === 'HEAD') || (route.endpoint === 'manifest' && method === 'PUT');
    if (!step && !this.pushes.has(key)) return;
    const push = this.push(key);
    push.inFlight++;
    if (this.closing.delete(res) && connection && this.needed(connection)) res.shouldKeepAlive = true;
    res.once('close', () => {
      push.inFlight--;
      if (res.writableFinished && res.statusCode < 300) {
        // A blob checked or sent leads to a manifest PUT; the manifest ends the push.
        if (route.endpoint === 'manifest' && method === 'PUT') push.awaitingManifest = false;
        else if (step && method !== 'DELETE') push.awaitingManifest = true;
      } else if (route.endpoint === 'blob' && method === 'HEAD') {
        push.awaitingManifest = true;
      }
      if (push.inFlight === 0 && !push.awaitingManifest && this.pushes.get(key) === push) {
        this.pushes.delete(key);
        if (this.draining) {
          this.closeIdle();
          this.checkDone();
        }
      }
    });
  }

  /**
   * Take no new work, close every idle connection no push needs, and resolve when the pushes
   * under way are done or `drainSeconds` are over (then the rest is cut). Calling it again cuts
   * at once.
   */
  drain(): Promise<void> {
    if (this.state === 'draining') {
      this.cut('a second signal');
      return Promise.resolve();
    }
    if (this.state === 'done') return Promise.resolve();
    this.state = 'draining';
    const done = new Promise<void>((resolve) => (this.finished = resolve));
    this.closeIdle();
    this.deadline = setTimeout(() => this.cut(`drainSeconds (${this.opts.drainSeconds}) are over`), this.opts.drainSeconds * 1000);
    this.checker = setInterval(() => {
      this.closeIdle();
      this.checkDone();
    }, DRAIN_CHECK_MS);
    this.checkDone();
    return done;
  }

  private cut(why: string): void {
    const cut: RequestSummary[] = [];
    for (const [socket, connection] of this.connections) {
      for (const entry of connection.inFlight) {
        cut.push(entry.summary());
        entry.onCut();
      }
      socket.destroy();
    }
    if (cut.length > 0) {
      const listed = cut.map((r) => `${r.method} ${r.path} from ${r.client}${r.user ? ` (${r.user})` : ''}`).join(', ');
      this.opts.logger.warn({ cut }, `stopping: ${why}; cut ${cut.length} request(s) in flight: ${listed}`);
    }
    this.finish();
  }

  private needed(connection: Connection): boolean {
    this.forgetStale();
    for (const key of connection.pushes) if (this.pushes.has(key)) return true;
    return false;
  }

  private closeIdle(): void {
    for (const [socket, connection] of this.connections) this.closeIfDone(socket, connection);
  }

  /** `end`, not `destroy`: the last answer may still be on its way out. */
  private closeIfDone(socket: Socket, connection: Connection): void {
    if (connection.inFlight.size === 0 && Date.now() - connection.idleSince >= IDLE_GRACE_MS && !this.needed(connection)) socket.end();
  }

  private checkDone(): void {
    if (this.state !== 'draining' || [...this.connections.values()].some((c) => c.inFlight.size > 0)) return;
    this.forgetStale();
    if (this.pushes.size === 0 || Date.now() - this.lastActivity > DRAIN_QUIET_MS) this.finish();
  }

  private finish(): void {
    if (this.state === 'done') return;
    this.state = 'done';
    if (this.deadline) clearTimeout(this.deadline);
    if (this.checker) clearInterval(this.checker);
    for (const server of this.servers) server.close();
    for (const socket of this.accepted) socket.destroy();
    this.finished?.();
  }

  /** The push under `key`, created if new, moved to the back as the most recently seen. */
  private push(key: string): Push {
    const push = this.pushes.get(key) ?? { inFlight: 0, awaitingManifest: false, seen: 0 };
    this.pushes.delete(key);
    push.seen = Date.now();
    this.pushes.set(key, push);
    if (this.pushes.size > MAX_PUSHES) this.pushes.delete(this.pushes.keys().next().value!);
    return push;
  }

  private forgetStale(): void {
    const now = Date.now();
    for (const [key, push] of this.pushes) {
      if (now - push.seen < PUSH_IDLE_MS) return;
      if (push.inFlight === 0) this.pushes.delete(key);
    }
  }
}
