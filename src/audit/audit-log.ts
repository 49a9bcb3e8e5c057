/**
 * The audit trail: one JSON line per change to the registry (a manifest pushed, a blob uploaded
 * or mounted, anything deleted — also when it was refused) and per failed login, so that "who
 * pushed which digest to which tag, from where" is one `jq` away. Never a password or a token.
 *
 * To `audit.file` (appended; reopened on SIGHUP, after logrotate moved it), or to stdout with the
 * access log as lines whose `msg` is "audit".
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { escapeLine, type Logger } from '../observe/logger.js';

export interface AuditEntry {
  event: 'change' | 'login-failed' | 'token';
  /** push (manifest), upload (blob), mount (blob from another repository), delete, login, token-create, token-revoke. */
  action: string;
  user: string | null;
  /**
   * The access token `user` acted through; on a token event, the token created or revoked. (Not
   * `token`: the logger redacts every field of that name.)
   */
  accessToken?: string;
  /** The oidc source that verified `user` (a CI job's ID token). */
  oidc?: string;
  /** On a token event: whose token it is. */
  owner?: string;
  client: string | null;
  /** For a refused write other than the usual ones: the method, and the request target when it names no repository. */
  method?: string;
  path?: string;
  repository?: string;
  tag?: string;
  digest?: string;
  /** Source repository of a mount. */
  from?: string;
  status: number;
  bytes?: number;
  reason?: string;
  /** On a failed-login summary: how many more failures of this user from this client since its last line. */
  repeated?: number;
  request: string;
}

export interface AuditSink {
  record(entry: AuditEntry): void;
  reopen(): void;
  close(): Promise<void>;
}

/** The order a person reads a line in: when, what, who, where, what exactly, how it ended. */
const FIELD_ORDER: (keyof AuditEntry)[] = ['event', 'action', 'user', 'accessToken', 'oidc', 'owner', 'client', 'method', 'path', 'repository', 'tag', 'digest', 'from', 'status', 'bytes', 'reason', 'repeated', 'request'];

function line(entry: AuditEntry): Record<string, unknown> {
  const out: Record<string, unknown> = { time: new Date().toISOString() };
  for (const key of FIELD_ORDER) if (entry[key] !== undefined) out[key] = entry[key];
  return out;
}

/** How long repeated failed logins of one user from one client are summed up before a line says how many. */
export const FAILED_LOGIN_INTERVAL_MS = 60_000;
const MAX_THROTTLED = 10_000;

/**
 * A guesser's thousands of failed logins must not be thousands of lines (a few connections filled
 * a disk that way): the first failure of a user from a client is a line at once, the ones after
 * it within the interval are counted, and one line at the end of the interval says how many
 * (`repeated`). Changes are never summed up.
 */
export function throttleFailedLogins(sink: AuditSink, intervalMs = FAILED_LOGIN_INTERVAL_MS): AuditSink & { flush(): void } {
  const pending = new Map<string, { last: AuditEntry; repeated: number }>();
  const flush = (): void => {
    for (const { last, repeated } of pending.values()) if (repeated > 0) sink.record({ ...last, repeated });
    pending.clear();
  };
  const timer = setInterval(flush, intervalMs);
  timer.unref();
  return {
    record(entry) {
      if (entry.event !== 'login-failed') return sink.record(entry);
      const key = `${entry.user ?? ''}\0${entry.client ?? ''}`;
      const seen = pending.get(key);
      if (seen) {
        seen.repeated++;
        seen.last = entry;
        return;
      }
      // Bounded: a spray of new names from many addresses gets its lines; memory does not grow.
      if (pending.size < MAX_THROTTLED) pending.set(key, { last: entry, repeated: 0 });
      sink.record(entry);
    },
    reopen: () => sink.reopen(),
    flush,
    close: async () => {
      clearInterval(timer);
      flush();
      await sink.close();
    },
  };
}

export function openAuditLog(file: string | null, logger: Logger): AuditSink {
  if (file === null) {
    return {
      record: (entry) => logger.info({ audit: line(entry) }, 'audit'),
      reopen: () => {},
      close: async () => {},
    };
  }
  let stream: WriteStream;
  const open = (): void => {
    stream = createWriteStream(file, { flags: 'a', mode: 0o600 });
    stream.on('error', (err) => logger.error({ file, err: { message: err.message } }, `audit file ${file} cannot be written (${err.message}); check audit.file and its directory`));
  };
  open();
  return {
    record: (entry) => void stream.write(`${escapeLine(JSON.stringify(line(entry)))}\n`),
    reopen: () => {
      const old = stream;
      open();
      old.end();
    },
    close: () => new Promise((resolve) => stream.end(resolve)),
  };
}
