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
  event: 'change' | 'login-failed';
  /** push (manifest), upload (blob), mount (blob from another repository), delete, login. */
  action: string;
  user: string | null;
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
  request: string;
}

export interface AuditSink {
  record(entry: AuditEntry): void;
  reopen(): void;
  close(): Promise<void>;
}

/** The order a person reads a line in: when, what, who, where, what exactly, how it ended. */
const FIELD_ORDER: (keyof AuditEntry)[] = ['event', 'action', 'user', 'client', 'method', 'path', 'repository', 'tag', 'digest', 'from', 'status', 'bytes', 'reason', 'request'];

function line(entry: AuditEntry): Record<string, unknown> {
  const out: Record<string, unknown> = { time: new Date().toISOString() };
  for (const key of FIELD_ORDER) if (entry[key] !== undefined) out[key] = entry[key];
  return out;
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
