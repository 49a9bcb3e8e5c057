/**
 * Every file and directory the config names, checked before anything starts: `config check`
 * prints the findings, `serve` refuses to start on an error and logs the warnings. Without this a
 * missing certificate surfaced as a stack trace from deep inside start-up, and an htpasswd file
 * the service user may not read (a host-written 0600 file in a container) only showed as
 * "nobody can log in".
 */
import { constants } from 'node:fs';
import { access, open, stat } from 'node:fs/promises';
import { userInfo } from 'node:os';
import path from 'node:path';
import type { Config } from '../config/types.js';
import { configSchema, type FileRole } from '../config/schema.js';
import { namedFiles } from '../config/file-keys.js';
import { readPairFiles } from '../tls/files.js';

export interface FileFinding {
  severity: 'error' | 'warning';
  /** `tls.certFile: /etc/… does not exist; point tls.certFile at …` */
  message: string;
}

export interface FileCheckOptions {
  /** How the operator runs this CLI, for the "add a user" hint (cli/self-command.ts). */
  selfCommand: string;
}

export async function checkNamedFiles(config: Config, options: FileCheckOptions): Promise<FileFinding[]> {
  const findings: FileFinding[] = [];
  const error = (message: string) => findings.push({ severity: 'error', message });
  const warning = (message: string) => findings.push({ severity: 'warning', message });
  const unusable = new Set<string>();

  for (const { key, path: file, role } of namedFiles(config, configSchema)) {
    if (!inUse(role, config)) continue;
    const choose = `choose ${role.what}`;
    if (role.use === 'dir') {
      const problem = await writableDir(file);
      if (problem) error(`${key}: ${problem}; ${choose}`);
      continue;
    }
    if (role.use === 'append') {
      const problem = await appendable(file);
      if (problem) error(`${key}: ${problem}; ${choose}`);
      continue;
    }
    const problem = await readable(file);
    if (!problem) continue;
    unusable.add(key);
    const addUser = role.users ? `add a user with: ${options.selfCommand} passwd add USER --file ${file}` : null;
    if (problem === 'does not exist' && role.ifMissing) {
      warning(`${key}: ${file} does not exist${role.ifMissing}${addUser ? `; ${addUser}` : ''}`);
    } else if (problem === 'does not exist') {
      error(`${key}: ${file} does not exist; point ${key} at ${role.what}`);
    } else {
      error(`${key}: ${file} ${problem}${role.ifUnreadable ? `, ${role.ifUnreadable}` : ''}; ${fixReadable(file)}`);
    }
  }
  // Both there: do they make a pair the proxy can serve?
  if (config.tls.mode === 'files' && !unusable.has('tls.certFile') && !unusable.has('tls.keyFile')) {
    await readPairFiles(config.tls.certFile!, config.tls.keyFile!).catch((err: Error) => error(err.message));
  }
  return findings;
}

function inUse(role: FileRole, config: Config): boolean {
  switch (role.when) {
    case undefined:
      return true;
    case 'tls-files':
      return config.tls.mode === 'files';
    case 'tls-acme':
      return config.tls.mode === 'acme';
    case 'auth':
      return config.auth.mode !== 'none';
    case 'htpasswd-shorthand':
      return config.auth.mode !== 'none' && config.auth.sources.length === 0;
    case 'redis':
      return config.redis !== null;
  }
}

/** Null when this process can read the file, else what is wrong, to follow the file's name. */
async function readable(file: string): Promise<string | null> {
  try {
    const info = await stat(file);
    if (info.isDirectory()) return 'is a directory, not a file';
    await (await open(file, 'r')).close();
    return null;
  } catch (err) {
    return describe(err as NodeJS.ErrnoException);
  }
}

/** Null when the directory exists and is writable, or could be created under a writable parent. */
async function writableDir(dir: string): Promise<string | null> {
  let at = dir;
  for (;;) {
    const info = await stat(at).catch((err: NodeJS.ErrnoException) => err);
    if (info instanceof Error) {
      if (info.code !== 'ENOENT') return `${where(dir, at)} ${describe(info)}`;
      const parent = path.dirname(at);
      if (parent === at) return `${dir} cannot be created`;
      at = parent;
      continue;
    }
    if (!info.isDirectory()) return `${where(dir, at)} is not a directory`;
    try {
      await access(at, constants.W_OK | constants.X_OK);
      return null;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      return at === dir ? `${dir} is not writable by ${whoami()} (${code})` : `${dir} does not exist and cannot be created in ${at} by ${whoami()} (${code})`;
    }
  }
}

async function appendable(file: string): Promise<string | null> {
  const info = await stat(file).catch(() => null);
  if (info?.isDirectory()) return `${file} is a directory, not a file`;
  try {
    await access(info ? file : path.dirname(file), constants.W_OK);
    return null;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') return `the directory of ${file} does not exist`;
    return `${file} is not writable by ${whoami()} (${e.code})`;
  }
}

function where(dir: string, at: string): string {
  return at === dir ? dir : `${at} (on the way to ${dir})`;
}

function describe(err: NodeJS.ErrnoException): string {
  if (err.code === 'ENOENT') return 'does not exist';
  if (err.code === 'EACCES' || err.code === 'EPERM') return `is not readable by ${whoami()}`;
  return `cannot be read (${err.code ?? err.message})`;
}

function fixReadable(file: string): string {
  return `let the proxy's user read it (chown ${user().name} ${file}, or chmod 0640 and give it the proxy's group)`;
}

function whoami(): string {
  const { name, uid } = user();
  return uid === null ? name : `${name} (uid ${uid})`;
}

function user(): { name: string; uid: number | null } {
  try {
    const info = userInfo();
    return { name: info.username, uid: info.uid };
  } catch {
    const uid = process.getuid?.() ?? null;
    return { name: uid === null ? 'this user' : String(uid), uid };
  }
}
