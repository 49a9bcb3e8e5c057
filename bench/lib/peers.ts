/**
 * The front ends registry-gate is measured against, each started from Debian's package with its
 * config from bench/peers/ (placeholders filled in here, nothing else changed): the nginx recipe
 * as the registry guides write it, nginx tuned, HAProxy and Caddy. All of them terminate TLS with
 * the same certificate and check the same user's password (bcrypt, from one htpasswd file).
 */
import { readFileSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { probeStatus } from '../../test/harness/http-probe.js';
import { freePort } from '../../test/harness/ports.js';
import { processError, run, spawnLong, waitUntil, type LongProcess } from '../../test/harness/process.js';
import { childPids } from './proc.js';

export type PeerName = 'nginx' | 'nginx-tuned' | 'haproxy' | 'caddy';
export const PEERS: readonly PeerName[] = ['nginx', 'nginx-tuned', 'haproxy', 'caddy'];

export interface Peer {
  name: PeerName;
  url: string;
  version: string;
  /** The processes that do the work: nginx's workers, HAProxy's and Caddy's single process. */
  pids(): number[];
  stop(): Promise<void>;
}

export interface PeerOptions {
  /** Readable by nginx's unprivileged workers (they read the htpasswd file on every request). */
  dir: string;
  /** host:port of the registry. */
  upstream: string;
  certFile: string;
  keyFile: string;
  htpasswdFile: string;
}

const CONFIG_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'peers');

/** bench/peers/<file> with every {{key}} replaced; a placeholder without a value is an error, not an empty string. */
export function fillTemplate(file: string, values: Record<string, string | number>): string {
  return readFileSync(path.join(CONFIG_DIR, file), 'utf8').replace(/\{\{(\w+)\}\}/g, (_, key: string) => {
    if (!(key in values)) throw new Error(`bench/peers/${file}: no value for {{${key}}}`);
    return String(values[key]);
  });
}

/** The one user of the bench's htpasswd file, as "name" and its bcrypt hash. */
async function htpasswdUser(file: string): Promise<{ user: string; hash: string }> {
  const line = (await readFile(file, 'utf8')).split('\n').find((l) => l.includes(':'));
  if (!line) throw new Error(`${file}: no user`);
  const at = line.indexOf(':');
  return { user: line.slice(0, at), hash: line.slice(at + 1).trim() };
}

async function started(name: PeerName, proc: LongProcess, url: string, pids: () => number[], version: string): Promise<Peer> {
  try {
    // Any answer (401 without credentials) means it is up.
    await waitUntil(async () => (await probeStatus(`${url}/v2/`)) === 401, { timeoutMs: 15_000, what: `${name} at ${url}` });
  } catch {
    await proc.stop();
    throw processError(proc, `did not answer at ${url}`);
  }
  return {
    name,
    url,
    version,
    pids,
    async stop() {
      await proc.stop({ graceMs: 5_000 });
    },
  };
}

const firstLine = (text: string): string => text.trim().split('\n')[0] ?? '?';

async function startNginx(name: 'nginx' | 'nginx-tuned', o: PeerOptions): Promise<Peer> {
  const version = (await run('nginx', ['-v'])).stderr.trim().replace(/^nginx version: nginx\//, '');
  const port = await freePort();
  for (const sub of ['body', 'proxy']) {
    await mkdir(path.join(o.dir, sub), { recursive: true });
    // Workers run as "nobody" when nginx starts as root and write request bodies here.
    await chmod(path.join(o.dir, sub), 0o777);
  }
  const conf = path.join(o.dir, 'nginx.conf');
  await writeFile(conf, fillTemplate(name === 'nginx' ? 'nginx-recipe.conf' : 'nginx-tuned.conf', { ...o, port }));
  await run('nginx', ['-t', '-p', o.dir, '-c', conf], { check: true });
  const proc = spawnLong('nginx', ['-p', o.dir, '-c', conf], { name });
  return started(name, proc, `https://127.0.0.1:${port}`, () => childPids(proc.pid), version);
}

async function startHaproxy(o: PeerOptions): Promise<Peer> {
  const version = firstLine((await run('haproxy', ['-v'])).stdout).replace(/^HAProxy version (\S+).*$/, '$1');
  const port = await freePort();
  const { user, hash } = await htpasswdUser(o.htpasswdFile);
  // HAProxy wants certificate and key in one file.
  const certKeyFile = path.join(o.dir, 'cert-key.pem');
  await writeFile(certKeyFile, `${await readFile(o.certFile, 'utf8')}${await readFile(o.keyFile, 'utf8')}`, { mode: 0o600 });
  const conf = path.join(o.dir, 'haproxy.cfg');
  await writeFile(conf, fillTemplate('haproxy.cfg', { dir: o.dir, port, upstream: o.upstream, certKeyFile, user, passwordHash: hash }), { mode: 0o600 });
  await run('haproxy', ['-c', '-f', conf], { check: true });
  const proc = spawnLong('haproxy', ['-W', '-db', '-f', conf], { name: 'haproxy' });
  // -W: a master and one worker process (with nbthread threads); the worker does the work.
  return started('haproxy', proc, `https://127.0.0.1:${port}`, () => childPids(proc.pid), version);
}

async function startCaddy(o: PeerOptions): Promise<Peer> {
  const version = firstLine((await run('caddy', ['version'])).stdout).split(' ')[0] ?? '?';
  const port = await freePort();
  const { user, hash } = await htpasswdUser(o.htpasswdFile);
  const conf = path.join(o.dir, 'Caddyfile');
  await writeFile(
    conf,
    fillTemplate('Caddyfile', { dir: o.dir, port, upstream: o.upstream, certFile: o.certFile, keyFile: o.keyFile, user, passwordHashBase64: Buffer.from(hash).toString('base64') }),
    { mode: 0o600 },
  );
  await run('caddy', ['validate', '--adapter', 'caddyfile', '--config', conf], { check: true, env: caddyEnv(o.dir) });
  const proc = spawnLong('caddy', ['run', '--adapter', 'caddyfile', '--config', conf], { name: 'caddy', env: caddyEnv(o.dir) });
  return started('caddy', proc, `https://127.0.0.1:${port}`, () => [proc.pid], version);
}

/** Caddy keeps state under $HOME and XDG dirs: the bench's temp dir, not root's home. */
const caddyEnv = (dir: string): Record<string, string> => ({ HOME: dir, XDG_DATA_HOME: path.join(dir, 'data'), XDG_CONFIG_HOME: path.join(dir, 'config') });

export function startPeer(name: PeerName, o: PeerOptions): Promise<Peer> {
  if (name === 'haproxy') return startHaproxy(o);
  if (name === 'caddy') return startCaddy(o);
  return startNginx(name, o);
}
