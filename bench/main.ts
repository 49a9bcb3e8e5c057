/**
 * npm run bench: the registry alone (plain HTTP), the nginx recipe and registry-gate, measured in
 * one run with the targets alternating, so that load from other processes on the machine hits
 * all of them alike and the ratios stay meaningful.
 *
 * Knobs for quicker runs while developing: BENCH_PHASES=rules,metrics,transfer,load,scaling,big,idle BENCH_MIB=512
 * BENCH_REPS=5 BENCH_LOAD_SECONDS=4 BENCH_LOAD_ROUNDS=3 BENCH_LOAD_CASES=manifest/proxy-bearer,…
 * BENCH_CPU_PROF=<dir> (the proxy runs under --cpu-prof; read with bench/profile-top.ts)
 * BENCH_KEEP=1 (keeps the temp dir with the logs of nginx and the proxy).
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { writeHtpasswd } from '../test/harness/htpasswd.js';
import { run } from '../test/harness/process.js';
import { startRegistry, type Registry } from '../test/harness/registry.js';
import { get } from '../test/harness/registry-client.js';
import { issueCert, makeTestCa, type TestCa } from '../test/harness/tls-ca.js';
import { untrackDir } from '../test/harness/cleanup.js';
import { makeTempDir, removeTempDir } from '../test/harness/tmp.js';
import { MANIFEST_V2, pushBenchImage } from './lib/image.js';
import { touchMemory } from './lib/memory.js';
import { startNginx, type Nginx } from './lib/nginx.js';
import { clientCpuSeconds, openWindow, type GroupWindow, type ProcessGroup } from './lib/proc.js';
import { startBenchProxy, type BenchProxy } from './lib/proxy.js';
import { measureRuleCost, type RuleCost } from './lib/rules.js';
import { measureMetricsCost } from './lib/metrics-cost.js';
import { holdIdleConnections, type IdleResult } from './lib/idle.js';
import { fmt, median, ratio, table, verdictLines, type Verdict } from './lib/report.js';
import { CHUNK_BYTES, concurrently, download, downloadHashingInline, fetchBlob, GiB, MiB, newBlob, upload, type Blob, type Endpoint } from './lib/transfer.js';
import { wrk, type WrkResult } from './lib/wrk.js';

const env = process.env;
const PHASES = new Set((env.BENCH_PHASES ?? 'rules,metrics,transfer,load,scaling,big,idle').split(','));
const IDLE_CONNECTIONS = 10_000;
const SINGLE_BYTES = Number(env.BENCH_MIB ?? 512) * MiB;
const REPS = Number(env.BENCH_REPS ?? 5);
const LOAD_SECONDS = Number(env.BENCH_LOAD_SECONDS ?? 4);
const LOAD_ROUNDS = Number(env.BENCH_LOAD_ROUNDS ?? 3);
const LOAD_CONNECTIONS = 32;
const SCALING = [1, 8, 32];
const SCALING_TOTAL_BYTES = 512 * MiB;
const BIG_BYTES = 2 * GiB;
const HARD_LIMIT_MS = 12 * 60_000;
/** What the bench keeps in page cache and tmpfs at most at one time (the 2 GiB step), with room to spare. */
const TOUCH_BYTES = 6 * GiB;

const USER = 'bench';
const PASSWORD = randomBytes(12).toString('base64url');
const APP = 'bench/app';
const BLOBS = 'bench/blobs';

type TargetName = 'direct' | 'nginx' | 'proxy';
const TARGETS: TargetName[] = ['direct', 'nginx', 'proxy'];

/** Each round starts with another target, so no target always runs first (cold) or last. */
function rotate<T>(list: readonly T[], by: number): T[] {
  const k = by % list.length;
  return [...list.slice(k), ...list.slice(0, k)];
}

const mbps = (bytes: number, seconds: number): number => bytes / seconds / 1e6;

function log(text: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${text}\n`);
}

interface Setup {
  dir: string;
  registry: Registry;
  ca: TestCa;
  nginx: Nginx;
  proxy: BenchProxy;
  /** The same proxy with the response cache off: what every request costs when it reaches the registry. */
  uncached: BenchProxy;
  versions: { registry: string; nginx: string };
  image: { headDigest: string };
}

async function setUp(): Promise<Setup> {
  const dir = await makeTempDir('bench');
  // nginx workers run as "nobody" and read the htpasswd file on every request.
  await chmod(dir, 0o755);
  const registry = await startRegistry();
  const ca = await makeTestCa('registry-gate bench CA');
  const leaf = await issueCert(ca, ['127.0.0.1', 'localhost']);
  const htpasswdFile = path.join(dir, 'htpasswd');
  await writeHtpasswd(htpasswdFile, { [USER]: PASSWORD }, 5);
  await chmod(htpasswdFile, 0o644);
  const nginxDir = path.join(dir, 'nginx');
  const proxyDir = path.join(dir, 'proxy');
  await mkdir(nginxDir, { mode: 0o755 });
  await mkdir(proxyDir);
  await mkdir(path.join(dir, 'uncached'));
  const nginx = await startNginx({ dir: nginxDir, upstream: registry.host, certFile: leaf.certFile, keyFile: leaf.keyFile, htpasswdFile });
  const proxy = await startBenchProxy({ dir: proxyDir, upstream: registry.url, htpasswdFile, cpuProfDir: env.BENCH_CPU_PROF });
  const uncached = await startBenchProxy({ dir: path.join(dir, 'uncached'), upstream: registry.url, htpasswdFile, cacheTtlSeconds: 0 });
  const registryVersion = (await run('docker-registry', ['--version'])).stdout.trim().split(' ').pop() ?? '?';
  const image = await pushBenchImage(registry.url, APP);
  return { dir, registry, ca, nginx, proxy, uncached, versions: { registry: registryVersion, nginx: nginx.version }, image };
}

/** What docker does before a push or pull: one GET /token with the user's password. */
async function fetchToken(s: Setup, scope: string): Promise<string> {
  const url = `${s.proxy.url}/token?service=${encodeURIComponent(s.proxy.host)}&scope=${encodeURIComponent(scope)}`;
  const res = await get(url, { ca: s.proxy.caPem, auth: { user: USER, pass: PASSWORD } });
  if (res.status !== 200) throw new Error(`GET /token answered ${res.status}: ${res.body.toString()}`);
  return (JSON.parse(res.body.toString()) as { token: string }).token;
}

async function endpoints(s: Setup): Promise<Record<TargetName, Endpoint>> {
  return {
    direct: { url: s.registry.url },
    nginx: { url: s.nginx.url, ca: s.ca.certPem, auth: { user: USER, pass: PASSWORD } },
    proxy: { url: s.proxy.url, ca: s.proxy.caPem, auth: { bearer: await fetchToken(s, `repository:${BLOBS}:pull,push`) } },
  };
}

/**
 * Deletes a measured blob's data from the registry's storage. Without this the page cache grows
 * by every GiB moved, and on this VM page cache growing into fresh memory makes the registry's
 * writes cost up to 3× more system time after a few GiB: later measurements would be slower
 * than earlier ones for reasons that have nothing to do with the target.
 */
async function forget(s: Setup, blobs: readonly Blob[]): Promise<void> {
  for (const b of blobs) {
    const hex = b.digest.slice('sha256:'.length);
    await rm(path.join(s.registry.dataDir, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex), { recursive: true, force: true });
  }
}

/**
 * Not measured: memory for the page cache and tmpfs (see touchMemory), then a first transfer
 * through each target, which warms up JIT, pools and buffers as in a running proxy.
 */
async function warmUp(s: Setup): Promise<void> {
  log(`touched ${fmt((await touchMemory(TOUCH_BYTES)) / GiB, 1)} GiB of memory`);
  const ep = await endpoints(s);
  for (const t of TARGETS) {
    const blob = await upload(ep[t], BLOBS, await newBlob(128 * MiB));
    await download(ep[t], BLOBS, blob);
    await forget(s, [blob]);
  }
}

interface Results {
  upload: Record<TargetName, number[]>;
  download: Record<TargetName, number[]>;
  downloadInline: Record<TargetName, number[]>;
  load: Map<string, LoadResult[]>;
  scaling: { n: number; target: TargetName; upMBps: number; downMBps: number; peakMiB: number }[];
  big: { target: TargetName; upMBps: number; downMBps: number; up: CpuSplit; down: CpuSplit; peakMiB: number }[];
  rules: RuleCost[];
  metricsUs: number;
  idle: IdleResult | null;
}

async function transferPhase(s: Setup, r: Results): Promise<void> {
  const ep = await endpoints(s);
  for (let rep = 0; rep < REPS; rep++) {
    for (const t of rotate(TARGETS, rep)) {
      const data = await newBlob(SINGLE_BYTES);
      const started = performance.now();
      const blob = await upload(ep[t], BLOBS, data);
      r.upload[t].push(mbps(SINGLE_BYTES, (performance.now() - started) / 1000));
      r.download[t].push(mbps(SINGLE_BYTES, await download(ep[t], BLOBS, blob)));
      r.downloadInline[t].push(mbps(SINGLE_BYTES, await downloadHashingInline(ep[t], BLOBS, blob)));
      await forget(s, [blob]);
      log(
        `transfer rep ${rep + 1} ${t}: up ${fmt(r.upload[t].at(-1)!)} MB/s, down ${fmt(r.download[t].at(-1)!)} MB/s, ` +
          `down hashing inline ${fmt(r.downloadInline[t].at(-1)!)} MB/s`,
      );
    }
  }
}

interface LoadCase {
  key: string;
  target: TargetName | 'uncached';
  kind: 'manifest' | 'blob';
  auth: 'none' | 'basic' | 'bearer';
}

const LOAD_CASES: LoadCase[] = (['manifest', 'blob'] as const).flatMap((kind) => [
  { key: `${kind}/direct`, target: 'direct', kind, auth: 'none' },
  { key: `${kind}/nginx`, target: 'nginx', kind, auth: 'basic' },
  { key: `${kind}/proxy-bearer`, target: 'proxy', kind, auth: 'bearer' },
  { key: `${kind}/proxy-basic`, target: 'proxy', kind, auth: 'basic' },
  { key: `${kind}/uncached-basic`, target: 'uncached', kind, auth: 'basic' },
]);

/** One load measurement plus the CPU the front (nginx or the proxy) and the registry spent per request. */
interface LoadResult extends WrkResult {
  frontUs: number;
  registryUs: number;
}

async function loadPhase(s: Setup, r: Results): Promise<void> {
  const basic = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
  const base: Record<LoadCase['target'], string> = { direct: s.registry.url, nginx: s.nginx.url, proxy: s.proxy.url, uncached: s.uncached.url };
  const g = groups(s);
  const cases = LOAD_CASES.filter((x) => !env.BENCH_LOAD_CASES || env.BENCH_LOAD_CASES.split(',').includes(x.key));
  const run = async (c: LoadCase, bearer: string, seconds: number): Promise<LoadResult> => {
    const headers: Record<string, string> = {};
    if (c.auth === 'basic') headers.authorization = basic;
    if (c.auth === 'bearer') headers.authorization = bearer;
    if (c.kind === 'manifest') headers.accept = MANIFEST_V2;
    const url = c.kind === 'manifest' ? `${base[c.target]}/v2/${APP}/manifests/latest` : `${base[c.target]}/v2/${APP}/blobs/${s.image.headDigest}`;
    const front = openWindow(g[c.target]);
    const registry = openWindow(g.direct);
    const result = await wrk(s.dir, { url, method: c.kind === 'manifest' ? 'GET' : 'HEAD', headers, connections: LOAD_CONNECTIONS, seconds });
    if (result.failures > 0) throw new Error(`${c.key}: ${result.failures} of ${result.requests} requests failed or were refused`);
    const perRequest = (w: GroupWindow): number => (w.cpuSeconds() * 1e6) / result.requests;
    return { ...result, frontUs: c.target === 'direct' ? 0 : perRequest(front), registryUs: perRequest(registry) };
  };
  // Not measured: the JIT of a proxy that has been running a while has seen this traffic.
  const warmBearer = `Bearer ${await fetchToken(s, `repository:${APP}:pull`)}`;
  for (const c of cases.filter((x) => x.kind === 'manifest')) await run(c, warmBearer, 2);
  for (let round = 0; round < LOAD_ROUNDS; round++) {
    const bearer = `Bearer ${await fetchToken(s, `repository:${APP}:pull`)}`;
    for (const c of rotate(cases, round * 3)) {
      const result = await run(c, bearer, LOAD_SECONDS);
      const list = r.load.get(c.key) ?? [];
      list.push(result);
      r.load.set(c.key, list);
      log(
        `load round ${round + 1} ${c.key}: ${fmt(result.rps)} req/s, p50 ${fmt(result.p50ms, 2)} ms, p99 ${fmt(result.p99ms, 2)} ms; ` +
          `CPU µs/request: front ${fmt(result.frontUs)}, registry ${fmt(result.registryUs)}`,
      );
    }
  }
}

function groups(s: Setup): Record<LoadCase['target'], ProcessGroup> {
  return {
    direct: { pids: () => [s.registry.process.pid] },
    nginx: { pids: () => s.nginx.workerPids() },
    proxy: { pids: () => s.proxy.pids() },
    uncached: { pids: () => s.uncached.pids() },
  };
}

async function scalingPhase(s: Setup, r: Results): Promise<void> {
  const ep = await endpoints(s);
  const g = groups(s);
  for (const n of SCALING) {
    const each = SCALING_TOTAL_BYTES / n;
    for (const t of rotate(TARGETS, n)) {
      const window = openWindow(g[t]);
      const data = await Promise.all(Array.from({ length: n }, () => newBlob(each)));
      const up = await concurrently(n, (i) => upload(ep[t], BLOBS, data[i]!));
      const down = await concurrently(n, (i) => fetchBlob(ep[t], BLOBS, up.results[i] as Blob));
      for (const fetched of down.results) await fetched.check();
      await forget(s, up.results);
      const peak = window.peak();
      r.scaling.push({
        n,
        target: t,
        upMBps: mbps(SCALING_TOTAL_BYTES, up.seconds),
        downMBps: mbps(SCALING_TOTAL_BYTES, down.seconds),
        peakMiB: peak.sumMiB,
      });
      log(`scaling ${n} × ${each / MiB} MiB ${t}: up ${fmt(r.scaling.at(-1)!.upMBps)} MB/s, down ${fmt(r.scaling.at(-1)!.downMBps)} MB/s, peak ${fmt(peak.sumMiB)} MiB`);
    }
  }
}

/** CPU seconds per GiB moved, split by who spent them. */
interface CpuSplit {
  client: number;
  front: number;
  registry: number;
}

async function bigPhase(s: Setup, r: Results): Promise<void> {
  const ep = await endpoints(s);
  const g = groups(s);
  const measure = async <T>(t: TargetName, job: () => Promise<T>): Promise<{ value: T; seconds: number; cpu: CpuSplit; peakMiB: number }> => {
    const front = openWindow(g[t]);
    const registry = openWindow(g.direct);
    const client = clientCpuSeconds();
    const started = performance.now();
    const value = await job();
    const seconds = (performance.now() - started) / 1000;
    const clientSeconds = clientCpuSeconds() - client;
    const perGiB = BIG_BYTES / GiB;
    return {
      value,
      seconds,
      cpu: { client: clientSeconds / perGiB, front: t === 'direct' ? 0 : front.cpuSeconds() / perGiB, registry: registry.cpuSeconds() / perGiB },
      peakMiB: front.peak().sumMiB,
    };
  };
  // Not measured: memory for the page cache and tmpfs again, after minutes of small requests (see touchMemory).
  await touchMemory(TOUCH_BYTES);
  for (const t of TARGETS) {
    const data = await newBlob(BIG_BYTES);
    const up = await measure(t, () => upload(ep[t], BLOBS, data));
    const down = await measure(t, () => fetchBlob(ep[t], BLOBS, up.value));
    await down.value.check();
    await forget(s, [up.value]);
    r.big.push({ target: t, upMBps: mbps(BIG_BYTES, up.seconds), downMBps: mbps(BIG_BYTES, down.seconds), up: up.cpu, down: down.cpu, peakMiB: up.peakMiB });
    log(`2 GiB ${t}: up ${fmt(mbps(BIG_BYTES, up.seconds))} MB/s, down ${fmt(mbps(BIG_BYTES, down.seconds))} MB/s, peak ${fmt(up.peakMiB)} MiB`);
  }
}

function report(s: Setup, r: Results, startedAt: Date, seconds: number): { text: string; verdicts: Verdict[] } {
  const med = (list: number[]): number => median(list);
  const load = (key: string, pick: (w: LoadResult) => number): number => median((r.load.get(key) ?? []).map(pick));
  const out: string[] = [];
  out.push(
    `registry-gate bench, ${startedAt.toISOString().slice(0, 10)}: ${os.availableParallelism()} cores (${os.cpus()[0]?.model.trim() ?? '?'}), ` +
      `Node ${process.versions.node}, loopback, registry ${s.versions.registry}, nginx ${s.versions.nginx}, ` +
      `run time ${fmt(seconds)} s`,
  );

  const rows: string[][] = [];
  if (PHASES.has('transfer')) {
    for (const [label, data] of [
      [`upload ${SINGLE_BYTES / MiB} MiB, ${CHUNK_BYTES / MiB} MiB PATCHes (MB/s)`, r.upload],
      [`download ${SINGLE_BYTES / MiB} MiB (MB/s)`, r.download],
      [`  the same, client hashing inline (MB/s)`, r.downloadInline],
    ] as const) {
      const [d, n, p] = [med(data.direct), med(data.nginx), med(data.proxy)];
      rows.push([`${label}, median of ${REPS}`, fmt(d), fmt(n), fmt(p), ratio(p, d), ratio(p, n)]);
    }
  }
  if (PHASES.has('scaling')) {
    const at8 = (t: TargetName): number => r.scaling.find((x) => x.n === 8 && x.target === t)?.upMBps ?? NaN;
    rows.push([`8 concurrent pushes × ${SCALING_TOTAL_BYTES / 8 / MiB} MiB (MB/s)`, fmt(at8('direct')), fmt(at8('nginx')), fmt(at8('proxy')), ratio(at8('proxy'), at8('direct')), ratio(at8('proxy'), at8('nginx'))]);
  }
  if (PHASES.has('load')) {
    for (const kind of ['manifest', 'blob'] as const) {
      const what = kind === 'manifest' ? 'manifest GET' : 'blob HEAD';
      const d = load(`${kind}/direct`, (w) => w.rps);
      const n = load(`${kind}/nginx`, (w) => w.rps);
      for (const auth of ['bearer', 'basic'] as const) {
        const key = `${kind}/proxy-${auth}`;
        const p = load(key, (w) => w.rps);
        rows.push([`${what}, proxy ${auth === 'bearer' ? 'Bearer' : 'Basic'}, nginx Basic (req/s)`, fmt(d), fmt(n), fmt(p), ratio(p, d), ratio(p, n)]);
        const lat = (k: string): string => `${fmt(load(k, (w) => w.p50ms), 2)}/${fmt(load(k, (w) => w.p99ms), 2)}`;
        rows.push([`  p50/p99 (ms)`, lat(`${kind}/direct`), lat(`${kind}/nginx`), lat(key), '', '']);
        const cpu = (k: string): string => `${k.endsWith('/direct') ? '-' : fmt(load(k, (w) => w.frontUs))}/${fmt(load(k, (w) => w.registryUs))}`;
        rows.push([`  CPU µs/request: front/registry`, cpu(`${kind}/direct`), cpu(`${kind}/nginx`), cpu(key), '', '']);
      }
      const off = `${kind}/uncached-basic`;
      if (r.load.has(off)) {
        const p = load(off, (w) => w.rps);
        rows.push([`${what}, cache off, proxy Basic (req/s)`, fmt(d), fmt(n), fmt(p), ratio(p, d), ratio(p, n)]);
        rows.push([`  p50/p99 (ms)`, '', '', `${fmt(load(off, (w) => w.p50ms), 2)}/${fmt(load(off, (w) => w.p99ms), 2)}`, '', '']);
        rows.push([`  CPU µs/request: front/registry`, '', '', `${fmt(load(off, (w) => w.frontUs))}/${fmt(load(off, (w) => w.registryUs))}`, '', '']);
      }
    }
  }
  out.push('', table(['measurement', 'direct', 'nginx', 'proxy', 'proxy/direct', 'proxy/nginx'], rows));
  if (PHASES.has('load')) {
    out.push(
      `(request load: wrk, 1 thread, ${LOAD_CONNECTIONS} connections, ${LOAD_SECONDS} s per run, median of ${LOAD_ROUNDS} runs; direct is plain HTTP without auth;\n` +
        ` the proxy runs as shipped, response cache on (cache.ttlSeconds 2); "cache off" is a second proxy with cache.ttlSeconds 0, not a target)`,
    );
  }

  if (PHASES.has('scaling')) {
    const srows = SCALING.flatMap((n) =>
      TARGETS.map((t) => {
        const x = r.scaling.find((y) => y.n === n && y.target === t)!;
        return [`${n} × ${SCALING_TOTAL_BYTES / n / MiB} MiB`, t, fmt(x.upMBps), fmt(x.downMBps), fmt(x.peakMiB)];
      }),
    );
    out.push('', table(['concurrent transfers', 'target', 'up MB/s', 'down MB/s', 'peak RSS MiB'], srows));
    out.push('(peak RSS, VmHWM reset before each step: direct = the registry, nginx = its worker, proxy = its process)');
  }
  if (PHASES.has('big')) {
    const cpu = (c: CpuSplit, t: TargetName): string => `${fmt(c.client, 2)} / ${t === 'direct' ? '-' : fmt(c.front, 2)} / ${fmt(c.registry, 2)}`;
    const brows = r.big.map((b) => [b.target, fmt(b.upMBps), fmt(b.downMBps), cpu(b.up, b.target), cpu(b.down, b.target), fmt(b.peakMiB)]);
    out.push('', table([`${BIG_BYTES / GiB} GiB blob`, 'up MB/s', 'down MB/s', 'CPU s/GiB up: client/front/registry', 'CPU s/GiB down', 'peak RSS MiB during upload'], brows));
    out.push('(front = the nginx worker or the proxy; client = the bench process and its curl: TLS and test data, not the digest check after each download; RSS as above)');
  }
  if (PHASES.has('rules')) {
    out.push('', table(['access rules', 'rules', 'µs per decision'], r.rules.map((x) => [x.label, String(x.rules), fmt(x.usPerDecision, 2)])));
    out.push('(in-process: groups lookup + first-match decision for a mix of own-team pushes, public pulls and refusals; the worst case is informational)');
  }
  if (PHASES.has('metrics')) out.push('', `metrics: ${fmt(r.metricsUs, 2)} µs per request (in-process: one observe() with a push/pull label mix and a transfer gauge step)`);
  if (r.idle) {
    out.push('', `idle keep-alive TLS connections: ${r.idle.held.toLocaleString('en')} held, proxy RSS ${fmt(r.idle.rssBeforeMiB)} MiB before, ${fmt(r.idle.rssMiB)} MiB with them (from ${Math.ceil(IDLE_CONNECTIONS / 500)} loopback addresses, one request each)`);
  }

  const verdicts: Verdict[] = [];
  if (PHASES.has('rules')) {
    const teams = r.rules[0]!;
    verdicts.push({ target: 'rule evaluation with 1,000 rules < 5 µs per request', measured: `${fmt(teams.usPerDecision, 2)} µs`, pass: teams.usPerDecision < 5 });
  }
  if (PHASES.has('metrics')) verdicts.push({ target: 'metrics < 5 µs per request', measured: `${fmt(r.metricsUs, 2)} µs`, pass: r.metricsUs < 5 });
  if (r.idle) {
    const mb = (r.idle.rssMiB * MiB) / 1e6;
    verdicts.push({ target: `${IDLE_CONNECTIONS.toLocaleString('en')} idle TLS connections held under 400 MB RSS`, measured: `${r.idle.held.toLocaleString('en')} held, ${fmt(mb)} MB`, pass: r.idle.held === IDLE_CONNECTIONS && mb < 400 });
  }
  if (PHASES.has('transfer')) {
    const up = med(r.upload.proxy) / med(r.upload.direct);
    verdicts.push({ target: 'upload ≥ 0.95 × direct', measured: `${up.toFixed(2)} × direct`, pass: up >= 0.95 });
    const down = med(r.download.proxy) / med(r.download.nginx);
    verdicts.push({ target: 'download ≥ 1.0 × nginx', measured: `${down.toFixed(2)} × nginx`, pass: down >= 1.0 });
  }
  if (PHASES.has('load')) {
    for (const auth of ['bearer', 'basic'] as const) {
      const p = load(`manifest/proxy-${auth}`, (w) => w.rps);
      const vsNginx = p / load('manifest/nginx', (w) => w.rps);
      const vsDirect = p / load('manifest/direct', (w) => w.rps);
      const label = auth === 'bearer' ? 'Bearer' : 'Basic';
      verdicts.push({ target: `authenticated manifest GET (${label}) ≥ 2 × nginx`, measured: `${vsNginx.toFixed(2)} × nginx`, pass: vsNginx >= 2 });
      verdicts.push({ target: `authenticated manifest GET (${label}) ≥ 0.8 × direct`, measured: `${vsDirect.toFixed(2)} × direct`, pass: vsDirect >= 0.8 });
      for (const kind of ['manifest', 'blob'] as const) {
        const mine = load(`${kind}/proxy-${auth}`, (w) => w.p99ms);
        const theirs = load(`${kind}/nginx`, (w) => w.p99ms);
        verdicts.push({
          target: `p99 ${kind === 'manifest' ? 'manifest GET' : 'blob HEAD'} (${label}) ≤ nginx`,
          measured: `${mine.toFixed(2)} ms vs ${theirs.toFixed(2)} ms`,
          pass: mine <= theirs,
        });
      }
    }
  }
  if (PHASES.has('big')) {
    const b = r.big.find((x) => x.target === 'proxy')!;
    const mb = (b.peakMiB * MiB) / 1e6;
    verdicts.push({ target: `proxy peak RSS < 150 MB during the ${BIG_BYTES / GiB} GiB upload`, measured: `${fmt(mb)} MB (${fmt(b.peakMiB)} MiB)`, pass: mb < 150 });
  }
  out.push('', verdictLines(verdicts));
  return { text: out.join('\n'), verdicts };
}

async function main(): Promise<number> {
  const hardLimit = setTimeout(() => {
    log(`still running after ${HARD_LIMIT_MS / 60_000} minutes: giving up`);
    process.exit(3);
  }, HARD_LIMIT_MS);
  hardLimit.unref();
  const startedAt = new Date();
  log('starting the registry, nginx and registry-gate');
  const s = await setUp();
  const r: Results = {
    upload: { direct: [], nginx: [], proxy: [] },
    download: { direct: [], nginx: [], proxy: [] },
    downloadInline: { direct: [], nginx: [], proxy: [] },
    load: new Map(),
    scaling: [],
    big: [],
    rules: [],
    metricsUs: 0,
    idle: null,
  };
  try {
    if (PHASES.has('rules')) r.rules = measureRuleCost();
    if (PHASES.has('metrics')) r.metricsUs = measureMetricsCost();
    await warmUp(s);
    if (PHASES.has('transfer')) await transferPhase(s, r);
    if (PHASES.has('load')) await loadPhase(s, r);
    if (PHASES.has('scaling')) await scalingPhase(s, r);
    if (PHASES.has('big')) await bigPhase(s, r);
    if (PHASES.has('idle')) {
      log(`opening ${IDLE_CONNECTIONS} idle TLS connections to the proxy`);
      r.idle = await holdIdleConnections(Number(new URL(s.proxy.url).port), s.proxy.caPem, IDLE_CONNECTIONS, s.proxy.pid);
    }
    const logCheck = await s.proxy.checkLog();
    const { text, verdicts } = report(s, r, startedAt, (Date.now() - startedAt.getTime()) / 1000);
    process.stdout.write(`${text}\n`);
    process.stdout.write(`(proxy access log: ${logCheck.requests} request lines, ${logCheck.torn} lines that are not whole JSON)\n`);
    return verdicts.every((v) => v.pass) && logCheck.torn === 0 ? 0 : 1;
  } finally {
    await s.proxy.stop();
    await s.uncached.stop();
    await s.nginx.stop();
    await s.registry.stop();
    await s.ca.dispose();
    if (env.BENCH_KEEP) untrackDir(s.dir);
    else await removeTempDir(s.dir);
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    log(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(2);
  },
);
