import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { trackPid, unmountUnderSync, untrackPid } from './cleanup.js';
import { run, spawnLong, waitUntil, type LongProcess, type RunResult } from './process.js';
import { makeTempDir, removeTempDir } from './tmp.js';

export interface DockerdOptions {
  /**
   * Extra insecure registries (CIDRs or host:port). Note that dockerd ALWAYS adds 127.0.0.0/8
   * on its own, and for an insecure registry it skips certificate verification: to make docker
   * verify a certificate, address the registry by a name mapped to ::1 (see hosts.ts).
   */
  insecureRegistries?: string[];
  startTimeoutMs?: number;
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
}

export interface DockerCallOptions {
  stdin?: string;
  /** Return the failed result instead of throwing. */
  allowFail?: boolean;
  timeoutMs?: number;
}

export interface Dockerd {
  /** "unix:///tmp/rg-dockerd-…/d.sock" */
  dockerHost: string;
  /** DOCKER_CONFIG of the client: `docker login` stores credentials in <configDir>/config.json. */
  configDir: string;
  /** Environment for running other docker clients against this daemon. */
  env: { DOCKER_HOST: string; DOCKER_CONFIG: string };
  process: LongProcess;
  /** The managed containerd's pid (dockerd starts it in a session of its own). */
  containerdPid(): number | null;
  /** The managed containerd's socket: `ctr -a <it>` reaches the same daemon. */
  containerdSocket: string;
  docker(args: readonly string[], opts?: DockerCallOptions): Promise<RunResult>;
  /** `docker login --password-stdin`; throws unless allowFail. */
  login(registry: string, user: string, pass: string, opts?: { allowFail?: boolean }): Promise<RunResult>;
  /**
   * Makes the daemon trust `caPem` for `hostPort` through /etc/docker/certs.d/<hostPort>/ca.crt,
   * which dockerd reads on every registry call (no restart). The directory is machine-wide
   * (dockerd has no per-daemon certs.d), so it is removed again at stop().
   */
  trustCa(hostPort: string, caPem: string | Buffer): Promise<void>;
  untrustCa(hostPort: string): Promise<void>;
  stop(): Promise<void>;
}

const CERTS_D = '/etc/docker/certs.d';

async function readPid(file: string): Promise<number | null> {
  const text = await readFile(file, 'utf8').catch(() => '');
  const pid = Number.parseInt(text.trim(), 10);
  return Number.isInteger(pid) && pid > 0 ? pid : null;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * A private dockerd (docker.io 20.10) with its own data-root, exec-root, socket and managed
 * containerd: vfs storage and no networking setup, which is what works unprivileged-network-wise
 * in this VM. Images come in with `docker load`; nothing is pulled from the internet.
 */
export async function startDockerd(opts: DockerdOptions = {}): Promise<Dockerd> {
  // Unix socket paths are limited to ~108 bytes and containerd nests its socket a few levels
  // below exec-root, so everything lives in a short dir directly under /tmp.
  const root = await makeTempDir('dockerd', '/tmp');
  const socket = path.join(root, 'd.sock');
  const execRoot = path.join(root, 'x');
  const configDir = path.join(root, 'client');
  await mkdir(configDir);
  await writeFile(path.join(configDir, 'config.json'), '{"auths":{}}\n', { mode: 0o600 });
  const daemonJson = path.join(root, 'daemon.json');
  await writeFile(
    daemonJson,
    JSON.stringify(
      {
        'storage-driver': 'vfs',
        iptables: false,
        ip6tables: false,
        bridge: 'none',
        'data-root': path.join(root, 'data'),
        'exec-root': execRoot,
        pidfile: path.join(root, 'd.pid'),
        // Otherwise dockerd writes its trust key to /etc/docker/key.json.
        'deprecated-key-path': path.join(root, 'key.json'),
        'log-level': opts.logLevel ?? 'warn',
        // Containers only start here with explicit limits: the sandbox refuses raising rlimits.
        'default-ulimits': { nofile: { Name: 'nofile', Hard: 20000, Soft: 20000 }, nproc: { Name: 'nproc', Hard: 1000, Soft: 1000 } },
        ...(opts.insecureRegistries?.length ? { 'insecure-registries': opts.insecureRegistries } : {}),
      },
      null,
      2,
    ),
  );

  const dockerHost = `unix://${socket}`;
  const env = { DOCKER_HOST: dockerHost, DOCKER_CONFIG: configDir };
  const proc = spawnLong('dockerd', ['--config-file', daemonJson, '-H', dockerHost], { name: 'dockerd' });
  const trusted = new Set<string>();
  let createdCertsD = false;
  let containerdPid: number | null = null;

  const docker = async (args: readonly string[], o: DockerCallOptions = {}): Promise<RunResult> =>
    run('docker', args, { env, stdin: o.stdin, check: !o.allowFail, timeoutMs: o.timeoutMs ?? 120_000 });

  const untrustCa = async (hostPort: string): Promise<void> => {
    await rm(path.join(CERTS_D, hostPort), { recursive: true, force: true });
    trusted.delete(hostPort);
  };

  const stop = async (): Promise<void> => {
    for (const hp of [...trusted]) await untrustCa(hp);
    // rmdir fails (and so keeps it) when someone else has entries in it.
    if (createdCertsD) await rmdir(CERTS_D).catch(() => {});
    await proc.stop({ graceMs: 15_000 });
    // dockerd starts containerd in a session of its own, out of reach of a process-group kill.
    containerdPid ??= await readPid(path.join(execRoot, 'containerd', 'containerd.pid'));
    if (containerdPid !== null && alive(containerdPid)) {
      process.kill(containerdPid, 'SIGTERM');
      await waitUntil(async () => !alive(containerdPid!), { timeoutMs: 5_000, what: 'containerd to exit' }).catch(() => {
        if (alive(containerdPid!)) process.kill(containerdPid!, 'SIGKILL');
      });
    }
    if (containerdPid !== null) untrackPid(containerdPid);
    unmountUnderSync(root);
    await removeTempDir(root);
  };

  try {
    await waitUntil(async () => (await run('docker', ['version'], { env, timeoutMs: 5_000 })).code === 0, {
      timeoutMs: opts.startTimeoutMs ?? 30_000,
      intervalMs: 100,
      what: '`docker version` to reach the daemon',
      proc,
    });
    containerdPid = await readPid(path.join(execRoot, 'containerd', 'containerd.pid'));
    // The exit-time safety net must know about it too: SIGKILL of dockerd would orphan it.
    if (containerdPid !== null) trackPid(containerdPid);
  } catch (err) {
    await stop().catch(() => {});
    throw err;
  }

  return {
    dockerHost,
    configDir,
    env,
    process: proc,
    containerdPid: () => containerdPid,
    containerdSocket: path.join(execRoot, 'containerd', 'containerd.sock'),
    docker,
    async login(registry, user, pass, o = {}) {
      return docker(['login', '--username', user, '--password-stdin', registry], { stdin: pass, allowFail: o.allowFail });
    },
    async trustCa(hostPort, caPem) {
      const dir = path.join(CERTS_D, hostPort);
      if (!existsSync(CERTS_D)) createdCertsD = true;
      await mkdir(dir, { recursive: true });
      await writeFile(path.join(dir, 'ca.crt'), caPem);
      trusted.add(hostPort);
    },
    untrustCa,
    stop,
  };
}
