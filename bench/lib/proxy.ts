import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, createReadStream, openSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { trackPid, untrackPid } from '../../test/harness/cleanup.js';
import { probeStatus } from '../../test/harness/http-probe.js';
import { freePort } from '../../test/harness/ports.js';
import { cliMain, repoRoot } from '../../test/harness/proxy.js';
import { waitUntil } from '../../test/harness/process.js';
import { fillTemplate } from './peers.js';

export interface BenchProxy {
  url: string;
  /** host:port as clients write it: the token service name. */
  host: string;
  /** The self-signed certificate, for clients to trust. */
  caPem: string;
  pid: number;
  /** Its Prometheus metrics (the GC counts among them). */
  metricsUrl: string;
  /** The processes to measure: the proxy is one process (worker threads included). */
  pids(): number[];
  /** The access log so far: request lines, and lines that are not whole JSON (a write that split a line). */
  checkLog(): Promise<{ requests: number; torn: number }>;
  stop(): Promise<void>;
}

/**
 * `node dist/cli/main.js serve` as an operator runs it, with bench/peers/registry-gate.config.json:
 * the README's recommended settings (TLS self-signed, read-public with the README's access rules,
 * failed-login limits, metrics, an audit file, log level info). Its stdout goes to a file, not
 * through the bench process, so that parsing a million log lines does not steal CPU from what is
 * measured.
 */
export async function startBenchProxy(o: { dir: string; upstream: string; htpasswdFile: string; cpuProfDir?: string; cacheTtlSeconds?: number }): Promise<BenchProxy> {
  const port = await freePort();
  const metricsPort = await freePort();
  const config = fillTemplate('registry-gate.config.json', {
    port,
    metricsPort,
    upstream: o.upstream,
    dir: o.dir,
    htpasswdFile: o.htpasswdFile,
    cacheTtlSeconds: o.cacheTtlSeconds ?? 2,
  });
  const configFile = path.join(o.dir, 'proxy.config.json');
  await writeFile(configFile, config);
  const logFile = path.join(o.dir, 'proxy.log');
  const out = openSync(logFile, 'a');
  const err = openSync(path.join(o.dir, 'proxy.stderr'), 'a');
  const profiling = o.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${o.cpuProfDir}`] : [];
  const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...profiling, ...nodeArgs, cliMain, 'serve', '--config', configFile], {
    cwd: repoRoot,
    stdio: ['ignore', out, err],
    detached: true,
    // The bench itself runs under tsx (NODE_OPTIONS may carry it); the proxy runs as built.
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  closeSync(out);
  closeSync(err);
  const pid = child.pid!;
  trackPid(pid);
  const exited = once(child, 'exit');
  const url = `https://127.0.0.1:${port}`;
  await waitUntil(async () => (await probeStatus(`${url}/healthz`)) === 200, {
    timeoutMs: 20_000,
    what: `registry-gate at ${url} (stderr: ${path.join(o.dir, 'proxy.stderr')})`,
  });
  const caPem = await readFile(path.join(o.dir, 'state', 'tls', 'self-signed-cert.pem'), 'utf8');
  return {
    url,
    host: `127.0.0.1:${port}`,
    caPem,
    pid,
    metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`,
    pids: () => [pid],
    async checkLog() {
      let requests = 0;
      let torn = 0;
      for await (const line of createInterface({ input: createReadStream(logFile), crlfDelay: Infinity })) {
        if (line === '') continue;
        try {
          if ((JSON.parse(line) as { msg?: unknown }).msg === 'request') requests++;
        } catch {
          torn++;
        }
      }
      return { requests, torn };
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => process.kill(-pid, 'SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
      untrackPid(pid);
    },
  };
}

/** How many mark-compacts (full GCs) the proxy has run so far, from its metrics. */
export async function markCompacts(proxy: BenchProxy): Promise<number> {
  const text = await (await fetch(proxy.metricsUrl)).text();
  const m = /^nodejs_gc_duration_seconds_count\{kind="major"\} (\d+)/m.exec(text);
  return m ? Number(m[1]) : 0;
}
