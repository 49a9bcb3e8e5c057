/**
 * `registry-gate passwd add|delete|verify USER [--file FILE] [--password-stdin] [--cost N]`
 *
 * Writes the same lines as `htpasswd -B` so that either tool can manage the file, and never takes
 * a password from argv (it would land in shell history and in `ps` for every local user to read).
 */
import { InputReader, InterruptedError } from './input.js';
import bcrypt from 'bcryptjs';
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, realpath, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import {
  findHtpasswdHash,
  isBcryptHash,
  parseHtpasswd,
  removeHtpasswdEntry,
  setHtpasswdEntry,
  toApacheBcrypt,
  usernameProblem,
} from '../auth/htpasswd.js';

export interface PasswdIO {
  stdin: NodeJS.ReadableStream;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  /** stdin is a terminal: the password may be prompted for. */
  isTTY: boolean;
}

export const DEFAULT_HTPASSWD_FILE = './auth/htpasswd';
export const DEFAULT_COST = 10;
// htpasswd's own bounds; at 17 bcryptjs already needs tens of seconds per check.
const MIN_COST = 4;
const MAX_COST = 17;
const MAX_PASSWORD_LENGTH = 4096;

const EXIT_OK = 0;
const EXIT_FAILED = 1;
const EXIT_USAGE = 2;
const EXIT_INTERRUPTED = 130;

export const PASSWD_USAGE = `Usage: registry-gate passwd add|delete|verify USER [--file FILE] [--password-stdin] [--cost N]

  add       create USER or replace their password (bcrypt, like htpasswd -B)
  delete    remove USER
  verify    check a password for USER (exit 0 when it matches, 1 otherwise)

  --file FILE        htpasswd file (default ${DEFAULT_HTPASSWD_FILE})
  --password-stdin   read the password from the first line of stdin instead of prompting
  --cost N           bcrypt cost for add, ${MIN_COST}-${MAX_COST} (default ${DEFAULT_COST})
`;

type Command = 'add' | 'delete' | 'verify';

interface PasswdArgs {
  command: Command;
  user: string;
  file: string;
  passwordStdin: boolean;
  cost: number;
}

class UsageError extends Error {}

export async function runPasswd(args: string[], io: PasswdIO): Promise<number> {
  const say = (line: string) => io.stderr.write(`${line}\n`);
  let parsed: PasswdArgs | 'help';
  try {
    parsed = parseArgs(args[0] === 'passwd' ? args.slice(1) : args);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    say(`registry-gate passwd: ${err.message}`);
    io.stderr.write(PASSWD_USAGE);
    return EXIT_USAGE;
  }
  if (parsed === 'help') {
    io.stdout.write(PASSWD_USAGE);
    return EXIT_OK;
  }
  if (!parsed.passwordStdin && parsed.command !== 'delete' && !io.isTTY) {
    say('registry-gate passwd: no terminal to prompt for the password on; pipe it in with --password-stdin');
    return EXIT_USAGE;
  }

  const input = new InputReader(io.stdin);
  try {
    switch (parsed.command) {
      case 'add':
        return await addUser(parsed, io, input, say);
      case 'delete':
        return await deleteUser(parsed, say);
      case 'verify':
        return await verifyUser(parsed, io, input, say);
    }
  } catch (err) {
    if (err instanceof InterruptedError) {
      say('interrupted, nothing changed');
      return EXIT_INTERRUPTED;
    }
    say(`registry-gate passwd: ${(err as Error).message}`);
    return EXIT_FAILED;
  } finally {
    input.close();
  }
}

function parseArgs(args: string[]): PasswdArgs | 'help' {
  const positionals: string[] = [];
  let file = DEFAULT_HTPASSWD_FILE;
  let passwordStdin = false;
  let cost = DEFAULT_COST;

  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = (): string => {
      const v = inline ?? args[++i];
      if (v === undefined || v === '') throw new UsageError(`${flag} needs a value`);
      return v;
    };
    if (flag === '--') {
      positionals.push(...args.slice(i + 1));
      break;
    } else if (flag === '-h' || flag === '--help') {
      return 'help';
    } else if (flag === '--file' || flag === '-f') {
      file = value();
    } else if (flag === '--password-stdin') {
      passwordStdin = true;
    } else if (flag === '--cost' || flag === '-C') {
      const text = value();
      cost = Number(text);
      if (!/^\d+$/.test(text) || cost < MIN_COST || cost > MAX_COST) throw new UsageError(`--cost must be an integer from ${MIN_COST} to ${MAX_COST}`);
    } else if (flag === '--password' || flag === '-p') {
      throw new UsageError('passwords are never taken from the command line (shell history, ps); use the prompt or --password-stdin');
    } else if (flag.startsWith('-') && flag !== '-') {
      throw new UsageError(`unknown option ${flag}`);
    } else {
      positionals.push(arg);
    }
  }

  const [command, user, ...extra] = positionals;
  if (command !== 'add' && command !== 'delete' && command !== 'verify') {
    throw new UsageError(command === undefined ? 'missing command' : `unknown command "${command}"`);
  }
  if (user === undefined) throw new UsageError('missing USER');
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
  const problem = usernameProblem(user);
  if (problem) throw new UsageError(problem);
  return { command, user, file, passwordStdin, cost };
}

async function addUser(args: PasswdArgs, io: PasswdIO, input: InputReader, say: (line: string) => void): Promise<number> {
  const target = await resolveTarget(args.file);
  // Read (and fail) before asking for a password nobody can then store.
  const existing = await readIfExists(target);
  const password = await readPassword(args, io, input, true);
  if (password === null) return EXIT_FAILED;
  if (password === '') {
    say('registry-gate passwd: refusing an empty password');
    return EXIT_FAILED;
  }
  if (bcrypt.truncates(password)) say('note: bcrypt uses only the first 72 bytes of this password');

  const hash = toApacheBcrypt(await bcrypt.hash(password, args.cost));
  const { text, replaced } = setHtpasswdEntry(existing?.text ?? '', args.user, hash);
  await writeAtomically(target, text, existing?.stats);
  say(`${replaced ? 'Updated password for' : 'Added'} user ${args.user} in ${args.file}`);

  const skipped = parseHtpasswd(text).skipped;
  if (skipped.length > 0) {
    say(`note: registry-gate ignores line(s) ${skipped.map((s) => s.line).join(', ')} of ${args.file} (not bcrypt or duplicate users)`);
  }
  return EXIT_OK;
}

async function deleteUser(args: PasswdArgs, say: (line: string) => void): Promise<number> {
  const target = await resolveTarget(args.file);
  const existing = await readIfExists(target);
  if (!existing) {
    say(`registry-gate passwd: ${args.file} does not exist`);
    return EXIT_FAILED;
  }
  const { text, removed } = removeHtpasswdEntry(existing.text, args.user);
  if (!removed) {
    say(`registry-gate passwd: user ${args.user} not found in ${args.file}`);
    return EXIT_FAILED;
  }
  await writeAtomically(target, text, existing.stats);
  say(`Deleted user ${args.user} from ${args.file}`);
  return EXIT_OK;
}

async function verifyUser(args: PasswdArgs, io: PasswdIO, input: InputReader, say: (line: string) => void): Promise<number> {
  const target = await resolveTarget(args.file);
  const existing = await readIfExists(target);
  if (!existing) {
    say(`registry-gate passwd: ${args.file} does not exist`);
    return EXIT_FAILED;
  }
  const hash = findHtpasswdHash(existing.text, args.user);
  if (hash === null) {
    say(`registry-gate passwd: user ${args.user} not found in ${args.file}`);
    return EXIT_FAILED;
  }
  if (!isBcryptHash(hash)) {
    say(`registry-gate passwd: the entry for ${args.user} is not bcrypt, so registry-gate ignores it; replace it with "passwd add"`);
    return EXIT_FAILED;
  }
  const password = await readPassword(args, io, input, false);
  if (password === null) return EXIT_FAILED;
  if (await bcrypt.compare(password, hash)) {
    say(`Password for user ${args.user} correct.`);
    return EXIT_OK;
  }
  say(`Password verification failed for user ${args.user}.`);
  return EXIT_FAILED;
}

/** null when no password could be read (message already printed). */
async function readPassword(args: PasswdArgs, io: PasswdIO, input: InputReader, confirm: boolean): Promise<string | null> {
  const say = (line: string) => io.stderr.write(`${line}\n`);
  if (args.passwordStdin) {
    const line = await input.readLine(MAX_PASSWORD_LENGTH);
    if (line === null) say('registry-gate passwd: no password on stdin');
    return line;
  }
  const first = await input.readHidden(io.stderr, confirm ? 'New password: ' : 'Password: ', MAX_PASSWORD_LENGTH);
  if (first === null) return null;
  if (!confirm) return first;
  const second = await input.readHidden(io.stderr, 'Re-type new password: ', MAX_PASSWORD_LENGTH);
  if (second === null) return null;
  if (first !== second) {
    say('registry-gate passwd: the passwords do not match, nothing changed');
    return null;
  }
  return first;
}

/** Kubernetes secrets and config management often symlink the file; replace the real file, keep the link. */
async function resolveTarget(file: string): Promise<string> {
  try {
    return await realpath(file);
  } catch {
    return path.resolve(file);
  }
}

interface ExistingFile {
  text: string;
  stats: { mode: number; uid: number; gid: number };
}

async function readIfExists(file: string): Promise<ExistingFile | null> {
  try {
    const [text, stats] = await Promise.all([readFile(file, 'utf8'), stat(file)]);
    return { text, stats };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new Error(`cannot read ${file}: ${(err as Error).message}`);
  }
}

/**
 * Temp file + rename: the proxy watching the file sees either the old or the new content, never
 * a half-written one. A new file is private (0600, directory 0700); an existing one keeps its
 * owner, group and mode, whoever runs this — root rewriting a `root:registry-gate 0640` file
 * would otherwise leave it `root:root` and unreadable by the service. Where they cannot be kept
 * (not root, not the owner, not in the group) nothing is replaced.
 */
async function writeAtomically(file: string, text: string, previous?: { mode: number; uid: number; gid: number }): Promise<void> {
  const dir = path.dirname(file);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const temp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(temp, 'wx', 0o600);
  try {
    try {
      await handle.writeFile(text);
      if (previous) {
        const now = await handle.stat();
        if (now.uid !== previous.uid || now.gid !== previous.gid) {
          await handle.chown(previous.uid, previous.gid).catch((err: Error) => {
            throw new Error(`cannot keep the owner and group of ${file} (uid ${previous.uid}, gid ${previous.gid}): ${err.message}; run as root or as its owner, in its group`);
          });
        }
        // After chown, which clears set-id bits.
        await handle.chmod(previous.mode & 0o7777);
      }
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, file);
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    throw err;
  }
}

