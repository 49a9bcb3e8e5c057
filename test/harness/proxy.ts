import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config } from '../../src/config/types.js';
import { probeStatus } from './http-probe.js';
import { freePort } from './ports.js';
import { run, spawnLong, statusKb, waitUntil, type ExitInfo, type LongProcess, type RunOptions, type RunResult } from './process.js';
import { makeTempDir, removeTempDir } from './tmp.js';

export type DeepPartial<T> = T extends (infer U)[] ? U[] : T extends object ? { [K in keyof T]?: DeepPartial<T[K]> | null } : T;

/** A config file's content: typed against src/config/types.ts, so a renamed key breaks the build of the tests. */
export type ProxyConfigFile = DeepPartial<Config> & { listen: string; upstream: string; stateDir: string };

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
export const cliMain = path.join(repoRoot, 'dist', 'cli', 'main.js');

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v);
}

/** Objects merge key by key; arrays, null and scalars replace. */
export function deepMerge<T>(base: T, over: unknown): T {
  if (!isPlainObject(base) || !isPlainObject(over)) return (over === undefined ? base : over) as T;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = k in out ? deepMerge(out[k], v) : v;
  return out as T;
}

/**
 * A minimal valid config: loopback listener on a free port, TLS off, auth none, a temp
 * stateDir, log level info. Everything else is left to the proxy's defaults on purpose, so the
 * tests also exercise those. The stateDir outlives stop() (restart tests reuse it) and is removed
 * at process exit, or earlier with disposeProxyConfig().
 */
export async function proxyConfig(overrides: DeepPartial<Config> & { upstream: string }): Promise<ProxyConfigFile> {
  const base: ProxyConfigFile = {
    listen: `127.0.0.1:${await freePort()}`,
    upstream: overrides.upstream,
    tls: { mode: 'off' },
    auth: { mode: 'none' },
    stateDir: await makeTempDir('proxy-state'),
    log: { level: 'info' },
  };
  // Replicas of one test share Redis and so must share the key that seals what they keep there.
  if (overrides.redis) base.redisOptions = { secretKey: TEST_REDIS_SECRET_KEY };
  return deepMerge(base, overrides);
}

export const TEST_REDIS_SECRET_KEY = 'test-only-secret-key-for-sealing-redis-values';

export async function disposeProxyConfig(cfg: { stateDir?: string | null }): Promise<void> {
  if (cfg.stateDir && path.basename(cfg.stateDir).startsWith('rg-proxy-state-')) await removeTempDir(cfg.stateDir);
}

export interface ProxyStartOptions {
  /** Extra environment (REGGATE_* overrides, NODE_OPTIONS). */
  env?: NodeJS.ProcessEnv;
  startTimeoutMs?: number;
  /** Entry point to run instead of dist/cli/main.js (a build in another directory). */
  main?: string;
}

export type LogLine = Record<string, unknown>;

export interface RunningProxy {
  /** http(s)://127.0.0.1:<port> of the main listener. */
  url: string;
  port: number;
  /** "127.0.0.1:<port>", for image references and Host headers. */
  host: string;
  /** The plain-HTTP listener (httpListen), when configured. */
  httpUrl: string | null;
  pid: number;
  configFile: string;
  process: LongProcess;
  /** stdout lines parsed as JSON (pino); lines that are not JSON come as { msg, nonJson: true }. */
  logs(): LogLine[];
  waitForLog(pred: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Resident set size now, in KiB (VmRSS). */
  rssKb(): number;
  /** Peak resident set size since start, in KiB (VmHWM). */
  peakRssKb(): number;
  stop(opts?: { signal?: NodeJS.Signals; graceMs?: number }): Promise<ExitInfo>;
}

function hostPort(listen: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(listen);
  if (!m) throw new Error(`startProxy: cannot parse listen address ${JSON.stringify(listen)}`);
  let host = m[1] ?? m[2]!;
  if (host === '0.0.0.0') host = '127.0.0.1';
  if (host === '::') host = '::1';
  return { host: host.includes(':') ? `[${host}]` : host, port: Number(m[3]) };
}


function ensureBuilt(main: string): void {
  if (!existsSync(main)) throw new Error(`${main} is missing: run \`npm run build\` before the e2e tests`);
}

/**
 * Runs `node dist/cli/main.js serve --config <file>` from the repo root with `config` written to
 * a temp file, and waits until GET /healthz answers 200.
 */
export async function startProxy(config: object, opts: ProxyStartOptions = {}): Promise<RunningProxy> {
  const main = opts.main ?? cliMain;
  ensureBuilt(main);
  const listen = (config as { listen?: unknown }).listen;
  if (typeof listen !== 'string') throw new Error('startProxy: config.listen must be a "host:port" string (use proxyConfig())');
  const tlsMode = (config as { tls?: { mode?: unknown } }).tls?.mode;
  const scheme = tlsMode === 'off' ? 'http' : 'https';
  const { host, port } = hostPort(listen);
  const httpListen = (config as { httpListen?: unknown }).httpListen;
  const httpUrl = typeof httpListen === 'string' ? `http://${hostPort(httpListen).host}:${hostPort(httpListen).port}` : null;

  const dir = await makeTempDir('proxy');
  const configFile = path.join(dir, 'proxy.config.json');
  await writeFile(configFile, JSON.stringify(config, null, 2));

  const lines: LogLine[] = [];
  const waiters = new Set<{ pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void }>();
  const onLine = (raw: string): void => {
    if (raw.trim() === '') return;
    let line: LogLine;
    try {
      const parsed: unknown = JSON.parse(raw);
      line = isPlainObject(parsed) ? parsed : { msg: raw, nonJson: true };
    } catch {
      line = { msg: raw, nonJson: true };
    }
    lines.push(line);
    for (const w of [...waiters]) {
      if (w.pred(line)) {
        waiters.delete(w);
        w.resolve(line);
      }
    }
  };

  const proc = spawnLong(process.execPath, [main, 'serve', '--config', configFile], {
    name: 'registry-gate',
    cwd: repoRoot,
    env: opts.env,
    onStdoutLine: onLine,
    tailBytes: 256 * 1024,
  });
  const url = `${scheme}://${host}:${port}`;
  try {
    await waitUntil(async () => (await probeStatus(`${url}/healthz`)) === 200, {
      timeoutMs: opts.startTimeoutMs ?? 20_000,
      what: `GET ${url}/healthz to answer 200`,
      proc,
    });
  } catch (err) {
    await proc.stop({ graceMs: 3_000 });
    await removeTempDir(dir);
    throw err;
  }

  return {
    url,
    port,
    host: `${host}:${port}`,
    httpUrl,
    pid: proc.pid,
    configFile,
    process: proc,
    logs: () => lines,
    waitForLog(pred, timeoutMs = 5_000) {
      const found = lines.find(pred);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const w = {
          pred,
          resolve: (l: LogLine): void => {
            clearTimeout(timer);
            resolve(l);
          },
        };
        const timer = setTimeout(() => {
          waiters.delete(w);
          reject(new Error(`registry-gate: no matching log line within ${timeoutMs} ms (have ${lines.length} lines)`));
        }, timeoutMs);
        waiters.add(w);
      });
    },
    rssKb: () => statusKb(proc.pid, 'VmRSS'),
    peakRssKb: () => statusKb(proc.pid, 'VmHWM'),
    async stop(o) {
      const info = await proc.stop({ graceMs: o?.graceMs ?? 10_000, signal: o?.signal });
      await removeTempDir(dir);
      return info;
    },
  };
}

/** Runs the CLI to completion (`config check`, `passwd add`, a `serve` expected to fail). */
export async function runProxyCli(args: readonly string[], opts: RunOptions & { main?: string } = {}): Promise<RunResult> {
  const main = opts.main ?? cliMain;
  ensureBuilt(main);
  return run(process.execPath, [main, ...args], { cwd: repoRoot, timeoutMs: 30_000, ...opts });
}
