/**
 * Group membership: the config's `groups` plus an optional htgroup file (Apache's format,
 * `group: user user …`, one group a line, `#` comments), re-read when it changes like htpasswd.
 * A file that cannot be used keeps the last good membership in force, as htpasswd does.
 */
import { createHash } from 'node:crypto';
import type { Logger } from '../observe/logger.js';
import { decodeText, WatchedFile, type FileRead, type WatchOptions } from '../files/watched-file.js';

export interface GroupLineProblem {
  line: number;
  reason: string;
}

const NAME = /^[^\s:]+$/;

/** Group → members. Lines that do not parse are reported and skipped; the others still count. */
export function parseHtgroup(text: string): { groups: Map<string, string[]>; skipped: GroupLineProblem[] } {
  const groups = new Map<string, string[]>();
  const skipped: GroupLineProblem[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const colon = line.indexOf(':');
    const group = colon === -1 ? '' : line.slice(0, colon).trim();
    if (!NAME.test(group)) {
      skipped.push({ line: i + 1, reason: 'expected "group: user user …"' });
      return;
    }
    const members = line.slice(colon + 1).trim().split(/\s+/).filter(Boolean);
    groups.set(group, [...(groups.get(group) ?? []), ...members]);
  });
  return { groups, skipped };
}

export interface GroupSource {
  groupsOf(user: string | null): ReadonlySet<string>;
}

const NONE: ReadonlySet<string> = new Set();

export class GroupDirectory implements GroupSource {
  private byUser = new Map<string, Set<string>>();
  private fromFile = new Map<string, string[]>();
  private fingerprint: string | null = null;
  private loaded = false;
  private watched: WatchedFile | null = null;

  private constructor(
    private readonly fromConfig: Record<string, string[]>,
    private readonly logger: Logger | null,
  ) {
    this.rebuild();
  }

  /** `file` null: the config's groups alone. */
  static async open(fromConfig: Record<string, string[]>, file: string | null, options: WatchOptions & { logger: Logger | null }): Promise<GroupDirectory> {
    const directory = new GroupDirectory(fromConfig, options.logger);
    if (file !== null) {
      directory.watched = new WatchedFile(file, (read) => directory.use(read), options);
      await directory.watched.start();
    }
    return directory;
  }

  groupsOf(user: string | null): ReadonlySet<string> {
    return user === null ? NONE : (this.byUser.get(user) ?? NONE);
  }

  reload(): Promise<void> {
    return this.watched?.read() ?? Promise.resolve();
  }

  async close(): Promise<void> {
    await this.watched?.close();
  }

  private use(read: FileRead): void {
    const file = this.watched!.file;
    if (!read.ok) {
      const why = read.error.code === 'ENOENT' ? 'it does not exist' : `it cannot be read (${read.error.code ?? read.error.message})`;
      this.keep(file, why);
      return;
    }
    const fingerprint = createHash('sha256').update(read.bytes).digest('hex');
    if (fingerprint === this.fingerprint) return;
    const text = decodeText(read.bytes);
    if (text === null) return this.keep(file, 'it is not UTF-8 text');
    const parsed = parseHtgroup(text);
    for (const s of parsed.skipped) this.logger?.warn({ file, line: s.line }, `htgroup line ${s.line} skipped: ${s.reason}`);
    this.fromFile = parsed.groups;
    this.fingerprint = fingerprint;
    this.loaded = true;
    this.rebuild();
    this.logger?.info({ file, groups: parsed.groups.size, skipped: parsed.skipped.length }, 'htgroup loaded');
  }

  private keep(file: string, why: string): void {
    const consequence = this.loaded ? 'keeping the groups loaded before' : "only the config's groups apply until it is fixed";
    this.logger?.error({ file }, `htgroup file not used because ${why}; ${consequence}`);
  }

  private rebuild(): void {
    const byUser = new Map<string, Set<string>>();
    const add = (group: string, members: string[]) => {
      for (const user of members) {
        let set = byUser.get(user);
        if (!set) byUser.set(user, (set = new Set()));
        set.add(group);
      }
    };
    for (const [group, members] of Object.entries(this.fromConfig)) add(group, members);
    for (const [group, members] of this.fromFile) add(group, members);
    this.byUser = byUser;
  }
}
