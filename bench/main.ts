/**
 * npm run bench: the registry alone (plain HTTP), four peer front ends (the nginx recipe, nginx
 * tuned, HAProxy, Caddy; bench/peers/) and registry-gate, measured in one run with the targets
 * alternating, so that load from other processes on the machine hits all of them alike and the
 * ratios stay meaningful. Each figure of the proxy is compared with the best peer at that figure.
 *
 * Knobs for quicker runs while developing: BENCH_PHASES=rules,metrics,logins,transfer,load,crowd,scaling,big,idle,noise BENCH_MIB=512
 * BENCH_TARGETS=direct,caddy,proxy (a subset; direct and proxy are always kept)
 * BENCH_REPS=5 BENCH_LOAD_SECONDS=4 BENCH_LOAD_ROUNDS=3 BENCH_LOAD_CASES=manifest/proxy-bearer,…
 * BENCH_CPU_PROF=<dir> (the proxy runs under --cpu-prof; read with bench/profile-top.ts)
 * BENCH_NODE_ARGS='--trace-gc …' (extra node flags for the proxy)
 * BENCH_FLOOR_ROUNDS=5 (rounds of proxy, bare-pipe and bare-relay runs for the CPU-per-GiB ratios)
 * BENCH_KEEP=1 (keeps the temp dir with the logs of nginx and the proxy).
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import ts from 'typescript';
import { writeHtpasswd } from '../test/harness/htpasswd.js';
import { run, spawnLong, statusKb, waitUntil } from '../test/harness/process.js';
import { freePort } from '../test/harness/ports.js';
import { repoRoot } from '../test/harness/proxy.js';
import { startRegistry, type Registry } from '../test/harness/registry.js';
import { get } from '../test/harness/registry-client.js';
import { issueCert, makeTestCa, type TestCa } from '../test/harness/tls-ca.js';
import { untrackDir } from '../test/harness/cleanup.js';
import { makeTempDir, removeTempDir } from '../test/harness/tmp.js';
import { MANIFEST_V2, pushBenchImage } from './lib/image.js';
import { touchMemory } from './lib/memory.js';
import { PEERS, startPeer, type Peer, type PeerName } from './lib/peers.js';
import { crowdHandshakes, crowdPull, type CrowdResult } from './lib/crowd.js';
import { clientCpuSeconds, openWindow, type GroupWindow, type ProcessGroup } from './lib/proc.js';
import { markCompacts, startBenchProxy, type BenchProxy } from './lib/proxy.js';
import { measureRuleCost, type RuleCost } from './lib/rules.js';
import { measureMetricsCost } from './lib/metrics-cost.js';
import { measureLoginCost, type LoginCost } from './lib/logins.js';
import { measureNoise, NOISE_REQUESTS, type NoiseResult } from './lib/noise.js';
import { holdIdleConnections, IDLE_PER_ADDRESS, type IdleResult } from './lib/idle.js';
import { best, fmt, median, ratio, table, verdictLines, type Best, type Verdict } from './lib/report.js';
import { CHUNK_BYTES, concurrently, download, downloadHashingInline, fetchBlob, GiB, MiB, newBlob, upload, type Blob, type Endpoint } from './lib/transfer.js';
import { wrk, type WrkResult } from './lib/wrk.js';

const env = process.env;
const PHASES = new Set((env.BENCH_PHASES ?? 'rules,metrics,logins,transfer,load,crowd,scaling,big,idle,noise').split(','));
const CROWD = 1_000;
const CROWD_ROUNDS = 3;
const IDLE_CONNECTIONS = 10_000;
const SINGLE_BYTES = Number(env.BENCH_MIB ?? 512) * MiB;
const REPS = Number(env.BENCH_REPS ?? 5);
const LOAD_SECONDS = Number(env.BENCH_LOAD_SECONDS ?? 4);
const LOAD_ROUNDS = Number(env.BENCH_LOAD_ROUNDS ?? 3);
const LOAD_CONNECTIONS = 32;
const SCALING = [1, 8, 32];
const SCALING_TOTAL_BYTES = 512 * MiB;
const BIG_BYTES = 2 * GiB;
/**
 * The proxy against the bare Node pipe and the bare node:http relay in rounds of runs seconds
 * apart: this VM's speed drifts by tens of percent within minutes (the pipe alone cost 1.25 to
 * 1.87 CPU s/GiB up within half an hour on 12-06), so a ratio of two runs minutes apart says more
 * about the machine than the code.
 */
const FLOOR_ROUNDS = Number(env.BENCH_FLOOR_ROUNDS ?? 5);
const FLOOR_BYTES = 512 * MiB;
const HARD_LIMIT_MS = 40 * 60_000;
/** What the bench keeps in page cache and tmpfs at most at one time (the 2 GiB step), with room to spare. */
const TOUCH_BYTES = 6 * GiB;

const USER = 'bench';
const PASSWORD = randomBytes(12).toString('base64url');
const APP = 'bench/app';
const BLOBS = 'bench/blobs';
/** What anonymous callers may pull under the README's access rules. */
const PUBLIC_APP = 'public/app';

type TargetName = 'direct' | PeerName | 'proxy';
const ACTIVE_PEERS: readonly PeerName[] = PEERS.filter((p) => !env.BENCH_TARGETS || env.BENCH_TARGETS.split(',').includes(p));
const TARGETS: readonly TargetName[] = ['direct', ...ACTIVE_PEERS, 'proxy'];

const perTarget = <T>(make: () => T): Record<TargetName, T> => Object.fromEntries(TARGETS.map((t) => [t, make()])) as Record<TargetName, T>;

const bestPeer = (value: (p: PeerName) => number, better: 'higher' | 'lower'): Best<PeerName> => best(ACTIVE_PEERS, value, better);

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
  peers: Record<PeerName, Peer>;
  proxy: BenchProxy;
  /** The same proxy with the response cache off: what every request costs when it reaches the registry. */
  uncached: BenchProxy;
  versions: { registry: string };
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
  const peers = {} as Record<PeerName, Peer>;
  for (const name of ACTIVE_PEERS) {
    const peerDir = path.join(dir, name);
    await mkdir(peerDir, { mode: 0o755 });
    peers[name] = await startPeer(name, { dir: peerDir, upstream: registry.host, certFile: leaf.certFile, keyFile: leaf.keyFile, htpasswdFile });
  }
  const proxyDir = path.join(dir, 'proxy');
  await mkdir(proxyDir);
  await mkdir(path.join(dir, 'uncached'));
  const proxy = await startBenchProxy({ dir: proxyDir, upstream: registry.url, htpasswdFile, cpuProfDir: env.BENCH_CPU_PROF });
  const uncached = await startBenchProxy({ dir: path.join(dir, 'uncached'), upstream: registry.url, htpasswdFile, cacheTtlSeconds: 0 });
  const registryVersion = (await run('docker-registry', ['--version'])).stdout.trim().split(' ').pop() ?? '?';
  const image = await pushBenchImage(registry.url, APP);
  await pushBenchImage(registry.url, PUBLIC_APP);
  return { dir, registry, ca, peers, proxy, uncached, versions: { registry: registryVersion }, image };
}

/** What docker does before a push or pull: one GET /token with the user's password. */
async function fetchToken(s: Setup, scope: string): Promise<string> {
  const url = `${s.proxy.url}/token?service=${encodeURIComponent(s.proxy.host)}&scope=${encodeURIComponent(scope)}`;
  const res = await get(url, { ca: s.proxy.caPem, auth: { user: USER, pass: PASSWORD } });
  if (res.status !== 200) throw new Error(`GET /token answered ${res.status}: ${res.body.toString()}`);
  return (JSON.parse(res.body.toString()) as { token: string }).token;
}

async function endpoints(s: Setup): Promise<Record<TargetName, Endpoint>> {
  const out = { direct: { url: s.registry.url }, proxy: { url: s.proxy.url, ca: s.proxy.caPem, auth: { bearer: await fetchToken(s, `repository:${BLOBS}:pull,push`) } } } as Record<TargetName, Endpoint>;
  for (const p of ACTIVE_PEERS) out[p] = { url: s.peers[p].url, ca: s.ca.certPem, auth: { user: USER, pass: PASSWORD } };
  return out;
}

/**
 * Deletes a measured blob's data from the registry's storage. Without this the page cache grows
 * by every GiB moved, and on this VM page cache growing into fresh memory makes the registry's
 * writes cost up to 3× more system time after a few GiB: later measurements would be slower
 * than earlier ones for reasons that have nothing to do with the target.
 */
async function forget(s: Setup, blobs: readonly Blob[], registry: Registry = s.registry): Promise<void> {
  for (const b of blobs) {
    const hex = b.digest.slice('sha256:'.length);
    await rm(path.join(registry.dataDir, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex), { recursive: true, force: true });
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
  /** majorsPerGiB: the proxy's mark-compacts per GiB uploaded in that step (null for the others). */
  scaling: { n: number; target: TargetName; upMBps: number; downMBps: number; peakMiB: number; majorsPerGiB: number | null }[];
  crowd: CrowdResult[];
  /** New TLS connections at once against each front end (bench/lib/crowd.ts crowdHandshakes), with the front's CPU per connection. */
  handshakes: { target: TargetName; result: CrowdResult; cpuUsPerConnection: number }[];
  /** The proxy's RSS before the first crowd and after the last one (MiB): what a crowd leaves behind. */
  crowdRssMiB: { before: number; after: number } | null;
  idleBare: IdleResult | null;
  /** The 2 GiB blob through bench/lib/bare-node.ts pipe: what Node itself spends per GiB on TLS and copying. */
  nodePipe: { upMBps: number; downMBps: number; upCpu: number; downCpu: number } | null;
  /** The bare Node pipe in the transfer step's rotation (MB/s per round): Node's own floor beside the peers. */
  pipeTransfer: { up: number[]; down: number[] };
  /** CPU s/GiB of each floor side's front, per round of runs (FLOOR_ROUNDS), up and down. */
  floorRounds: Record<FloorSide, { up: number; down: number }>[];
  big: { target: TargetName; upMBps: number; downMBps: number; up: CpuSplit; down: CpuSplit; peakMiB: number }[];
  rules: RuleCost[];
  metricsUs: number;
  logins: LoginCost[];
  noise: NoiseResult[];
  idle: IdleResult | null;
  /** The idle step against a proxy started for it, as the bare server is: the same history for both. */
  idleFresh: IdleResult | null;
}

async function transferPhase(s: Setup, r: Results): Promise<void> {
  const ep = await endpoints(s);
  // Node's floor in the same rotation: a bare Node TLS pipe to a registry of its own (relative
  // Location headers: nothing in a pipe rewrites http:// URLs), warmed up as the others were.
  const relative = await startRegistry({ relativeUrls: true });
  const pipe = await startBareNode(s, 'pipe', relative);
  try {
    const pipeEp: Endpoint = { url: pipe.url, ca: s.proxy.caPem };
    await forget(s, [await upload(pipeEp, BLOBS, await newBlob(64 * MiB))], relative);
    for (let rep = 0; rep < REPS; rep++) {
      for (const t of rotate([...TARGETS, 'pipe'] as const, rep)) {
        const data = await newBlob(SINGLE_BYTES);
        const started = performance.now();
        if (t === 'pipe') {
          const blob = await upload(pipeEp, BLOBS, data);
          r.pipeTransfer.up.push(mbps(SINGLE_BYTES, (performance.now() - started) / 1000));
          r.pipeTransfer.down.push(mbps(SINGLE_BYTES, await download(pipeEp, BLOBS, blob)));
          await forget(s, [blob], relative);
          log(`transfer rep ${rep + 1} bare Node pipe: up ${fmt(r.pipeTransfer.up.at(-1)!)} MB/s, down ${fmt(r.pipeTransfer.down.at(-1)!)} MB/s`);
          continue;
        }
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
  } finally {
    await pipe.stop();
    await relative.stop();
  }
}

interface LoadCase {
  key: string;
  target: TargetName | 'uncached';
  kind: 'manifest' | 'blob';
  auth: 'none' | 'basic' | 'bearer';
}

const LOAD_CASES: LoadCase[] = (['manifest', 'blob'] as const).flatMap((kind): LoadCase[] => [
  { key: `${kind}/direct`, target: 'direct', kind, auth: 'none' },
  ...ACTIVE_PEERS.map((p): LoadCase => ({ key: `${kind}/${p}`, target: p, kind, auth: 'basic' })),
  { key: `${kind}/proxy-bearer`, target: 'proxy', kind, auth: 'bearer' },
  { key: `${kind}/proxy-basic`, target: 'proxy', kind, auth: 'basic' },
  { key: `${kind}/uncached-basic`, target: 'uncached', kind, auth: 'basic' },
]);

/** One load measurement plus the CPU the front (a peer or the proxy) and the registry spent per request. */
interface LoadResult extends WrkResult {
  frontUs: number;
  registryUs: number;
}

async function loadPhase(s: Setup, r: Results): Promise<void> {
  const basic = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
  const base = { direct: s.registry.url, proxy: s.proxy.url, uncached: s.uncached.url } as Record<LoadCase['target'], string>;
  for (const p of ACTIVE_PEERS) base[p] = s.peers[p].url;
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
  const out = {
    direct: { pids: () => [s.registry.process.pid] },
    proxy: { pids: () => s.proxy.pids() },
    uncached: { pids: () => s.uncached.pids() },
  } as Record<LoadCase['target'], ProcessGroup>;
  for (const p of ACTIVE_PEERS) out[p] = { pids: () => s.peers[p].pids() };
  return out;
}

async function scalingPhase(s: Setup, r: Results): Promise<void> {
  const ep = await endpoints(s);
  const g = groups(s);
  for (const n of SCALING) {
    const each = SCALING_TOTAL_BYTES / n;
    for (const t of rotate(TARGETS, n)) {
      const window = openWindow(g[t]);
      const data = await Promise.all(Array.from({ length: n }, () => newBlob(each)));
      const majorsBefore = t === 'proxy' ? await markCompacts(s.proxy) : 0;
      const up = await concurrently(n, (i) => upload(ep[t], BLOBS, data[i]!));
      const majorsPerGiB = t === 'proxy' ? ((await markCompacts(s.proxy)) - majorsBefore) / (SCALING_TOTAL_BYTES / GiB) : null;
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
        majorsPerGiB,
      });
      log(`scaling ${n} × ${each / MiB} MiB ${t}: up ${fmt(r.scaling.at(-1)!.upMBps)} MB/s, down ${fmt(r.scaling.at(-1)!.downMBps)} MB/s, peak ${fmt(peak.sumMiB)} MiB`);
    }
  }
}

/**
 * Measured against each other in the floor rounds: the proxy, bench/lib/bare-node.ts pipe (TLS and
 * bytes, no HTTP) and bench/lib/bare-node.ts relay (node:http both ways, nothing else).
 */
const FLOOR_SIDES = ['proxy', 'pipe', 'relay'] as const;
type FloorSide = (typeof FLOOR_SIDES)[number];

/** CPU seconds per GiB moved, split by who spent them. */
interface CpuSplit {
  client: number;
  front: number;
  registry: number;
}

async function bigPhase(s: Setup, r: Results): Promise<void> {
  const ep = await endpoints(s);
  const g = groups(s);
  /** `front` null: the registry alone, whose peak is then the one reported. */
  const measure = async <T>(frontGroup: ProcessGroup | null, registryGroup: ProcessGroup, job: () => Promise<T>, bytes = BIG_BYTES): Promise<{ value: T; seconds: number; cpu: CpuSplit; peakMiB: number }> => {
    const front = frontGroup ? openWindow(frontGroup) : null;
    const registry = openWindow(registryGroup);
    const client = clientCpuSeconds();
    const started = performance.now();
    const value = await job();
    const seconds = (performance.now() - started) / 1000;
    const clientSeconds = clientCpuSeconds() - client;
    const perGiB = bytes / GiB;
    return {
      value,
      seconds,
      cpu: { client: clientSeconds / perGiB, front: front ? front.cpuSeconds() / perGiB : 0, registry: registry.cpuSeconds() / perGiB },
      peakMiB: (front ?? registry).peak().sumMiB,
    };
  };
  // Not measured: memory for the page cache and tmpfs again, after minutes of small requests (see touchMemory).
  await touchMemory(TOUCH_BYTES);
  for (const t of TARGETS) {
    const data = await newBlob(BIG_BYTES);
    const front = t === 'direct' ? null : g[t];
    const up = await measure(front, g.direct, () => upload(ep[t], BLOBS, data));
    const down = await measure(front, g.direct, () => fetchBlob(ep[t], BLOBS, up.value));
    await down.value.check();
    await forget(s, [up.value]);
    r.big.push({ target: t, upMBps: mbps(BIG_BYTES, up.seconds), downMBps: mbps(BIG_BYTES, down.seconds), up: up.cpu, down: down.cpu, peakMiB: up.peakMiB });
    log(`2 GiB ${t}: up ${fmt(mbps(BIG_BYTES, up.seconds))} MB/s, down ${fmt(mbps(BIG_BYTES, down.seconds))} MB/s, peak ${fmt(up.peakMiB)} MiB`);
  }
  // The floor: Node terminating TLS and piping bytes to the registry, nothing else (bench/lib/bare-node.ts pipe).
  // Its registry writes relative Location headers: nothing in a bare pipe or relay turns its http:// URLs into https:// ones.
  const relative = await startRegistry({ relativeUrls: true });
  const pipe = await startBareNode(s, 'pipe', relative);
  const relay = await startBareNode(s, 'relay', relative);
  try {
    const pipeEp: Endpoint = { url: pipe.url, ca: s.proxy.caPem };
    const front: ProcessGroup = { pids: () => [pipe.pid] };
    const behind: ProcessGroup = { pids: () => [relative.process.pid] };
    const data = await newBlob(BIG_BYTES);
    const up = await measure(front, behind, () => upload(pipeEp, BLOBS, data));
    const down = await measure(front, behind, () => fetchBlob(pipeEp, BLOBS, up.value));
    await down.value.check();
    await forget(s, [up.value], relative);
    r.nodePipe = { upMBps: mbps(BIG_BYTES, up.seconds), downMBps: mbps(BIG_BYTES, down.seconds), upCpu: up.cpu.front, downCpu: down.cpu.front };
    log(`2 GiB through a bare Node TLS pipe: up ${fmt(r.nodePipe.upMBps)} MB/s ${fmt(r.nodePipe.upCpu, 2)} CPU s/GiB, down ${fmt(r.nodePipe.downMBps)} MB/s ${fmt(r.nodePipe.downCpu, 2)} CPU s/GiB`);
    const sides: Record<FloorSide, { ep: Endpoint; front: ProcessGroup; registry: ProcessGroup; own: Registry | undefined }> = {
      proxy: { ep: ep.proxy, front: g.proxy, registry: g.direct, own: undefined },
      pipe: { ep: pipeEp, front, registry: behind, own: relative },
      relay: { ep: { url: relay.url, ca: s.proxy.caPem }, front: { pids: () => [relay.pid] }, registry: behind, own: relative },
    };
    for (let i = 0; i < FLOOR_ROUNDS; i++) {
      const cpu = { proxy: { up: NaN, down: NaN }, pipe: { up: NaN, down: NaN }, relay: { up: NaN, down: NaN } };
      // Each side goes first, second and last in turn.
      for (const who of FLOOR_SIDES.map((_, k) => FLOOR_SIDES[(k + i) % FLOOR_SIDES.length]!)) {
        const side = sides[who];
        const data = await newBlob(FLOOR_BYTES);
        const pushed = await measure(side.front, side.registry, () => upload(side.ep, BLOBS, data), FLOOR_BYTES);
        const fetched = await measure(side.front, side.registry, () => fetchBlob(side.ep, BLOBS, pushed.value), FLOOR_BYTES);
        await fetched.value.check();
        await forget(s, [pushed.value], side.own);
        cpu[who] = { up: pushed.cpu.front, down: fetched.cpu.front };
      }
      r.floorRounds.push(cpu);
      const each = (way: 'up' | 'down'): string => FLOOR_SIDES.map((who) => `${who} ${fmt(cpu[who][way], 2)}`).join(' ');
      log(`floor round ${i + 1} of ${FLOOR_ROUNDS}, ${FLOOR_BYTES / MiB} MiB: CPU s/GiB up ${each('up')}, down ${each('down')}`);
    }
  } finally {
    await relay.stop();
    await pipe.stop();
    await relative.stop();
  }
}

/** The median over the floor rounds of `of`'s CPU per GiB ÷ `over`'s in the same round. */
function floorRatio(r: Results, way: 'up' | 'down', of: FloorSide = 'proxy', over: FloorSide = 'pipe'): number {
  return median(r.floorRounds.map((x) => x[of][way] / x[over][way]));
}

/** "0.93 (caddy)": the proxy's value over the best peer's, and which peer that was. */
function vsBest(mine: number, top: Best<string>): string {
  const r = ratio(mine, top.value);
  return r === '-' ? r : `${r} (${top.name})`;
}

function report(s: Setup, r: Results, startedAt: Date, seconds: number): { text: string; verdicts: Verdict[] } {
  const med = (list: number[]): number => median(list);
  const load = (key: string, pick: (w: LoadResult) => number): number => median((r.load.get(key) ?? []).map(pick));
  const out: string[] = [];
  out.push(
    `registry-gate bench, ${startedAt.toISOString().slice(0, 10)}: ${os.availableParallelism()} cores (${os.cpus()[0]?.model.trim() ?? '?'}), ` +
      `Node ${process.versions.node}, loopback, registry ${s.versions.registry}, ` +
      ACTIVE_PEERS.map((p) => `${p} ${s.peers[p].version}`).join(', ') +
      `, run time ${fmt(seconds)} s`,
  );

  const header = ['measurement', ...TARGETS, 'proxy/direct', 'proxy/best peer'];
  const rows: string[][] = [];
  /** One row of figures per target, where "better" says whether the best peer is the highest or the lowest. */
  const row = (label: string, value: (t: TargetName) => number, better: 'higher' | 'lower', digits = 0): void => {
    rows.push([label, ...TARGETS.map((t) => fmt(value(t), digits)), ratio(value('proxy'), value('direct')), vsBest(value('proxy'), bestPeer(value, better))]);
  };
  const note = (label: string, value: (t: TargetName) => string): void => {
    rows.push([label, ...TARGETS.map(value), '', '']);
  };
  if (PHASES.has('transfer')) {
    for (const [label, data] of [
      [`upload ${SINGLE_BYTES / MiB} MiB, ${CHUNK_BYTES / MiB} MiB PATCHes (MB/s)`, r.upload],
      [`download ${SINGLE_BYTES / MiB} MiB (MB/s)`, r.download],
      [`  the same, client hashing inline (MB/s)`, r.downloadInline],
    ] as const) {
      row(`${label}, median of ${REPS}`, (t) => med(data[t]), 'higher');
    }
  }
  const scaled = (n: number, t: TargetName): { upMBps: number; downMBps: number } | undefined => r.scaling.find((x) => x.n === n && x.target === t);
  if (PHASES.has('scaling')) {
    for (const n of SCALING.filter((x) => x > 1)) {
      row(`${n} concurrent pushes × ${SCALING_TOTAL_BYTES / n / MiB} MiB (MB/s)`, (t) => scaled(n, t)?.upMBps ?? NaN, 'higher');
      row(`${n} concurrent pulls × ${SCALING_TOTAL_BYTES / n / MiB} MiB (MB/s)`, (t) => scaled(n, t)?.downMBps ?? NaN, 'higher');
    }
  }
  const big = (t: TargetName): Results['big'][number] | undefined => r.big.find((x) => x.target === t);
  if (PHASES.has('big')) {
    row(`front CPU s/GiB, ${BIG_BYTES / GiB} GiB upload`, (t) => (t === 'direct' ? NaN : (big(t)?.up.front ?? NaN)), 'lower', 2);
    row(`front CPU s/GiB, ${BIG_BYTES / GiB} GiB download`, (t) => (t === 'direct' ? NaN : (big(t)?.down.front ?? NaN)), 'lower', 2);
  }
  const proxyKey = (kind: string, auth: 'bearer' | 'basic'): string => `${kind}/proxy-${auth}`;
  /** The load key of a target: peers answer Basic; the proxy's column shows the case the row is about. */
  const loadKey = (kind: string, t: TargetName, proxyCase: string): string => (t === 'proxy' ? proxyCase : `${kind}/${t}`);
  if (PHASES.has('load')) {
    for (const kind of ['manifest', 'blob'] as const) {
      const what = kind === 'manifest' ? 'manifest GET' : 'blob HEAD';
      const cases: [string, string][] = [
        [`${what}, proxy Bearer, peers Basic (req/s)`, proxyKey(kind, 'bearer')],
        [`${what}, proxy Basic, peers Basic (req/s)`, proxyKey(kind, 'basic')],
      ];
      if (r.load.has(`${kind}/uncached-basic`)) cases.push([`${what}, proxy cache off, Basic (req/s)`, `${kind}/uncached-basic`]);
      for (const [label, key] of cases) {
        row(label, (t) => load(loadKey(kind, t, key), (w) => w.rps), 'higher');
        row(`  p99 (ms)`, (t) => load(loadKey(kind, t, key), (w) => w.p99ms), 'lower', 2);
        note(`  p50 (ms)`, (t) => fmt(load(loadKey(kind, t, key), (w) => w.p50ms), 2));
        note(`  CPU µs/request: front/registry`, (t) => {
          const k = loadKey(kind, t, key);
          return `${t === 'direct' ? '-' : fmt(load(k, (w) => w.frontUs))}/${fmt(load(k, (w) => w.registryUs))}`;
        });
      }
    }
  }
  if (r.handshakes.length > 0) {
    const hs = (t: TargetName, pick: (x: Results['handshakes'][number]) => number): number => median(r.handshakes.filter((x) => x.target === t).map(pick));
    const label = `${CROWD.toLocaleString('en')} new TLS connections at once (ECDSA P-256), GET /v2/ → 401, median of ${CROWD_ROUNDS}`;
    row(`${label}: p50 (ms)`, (t) => (t === 'direct' ? NaN : hs(t, (x) => x.result.p50ms)), 'lower');
    row(`  p99 (ms)`, (t) => (t === 'direct' ? NaN : hs(t, (x) => x.result.p99ms)), 'lower');
    row(`  front CPU µs per connection`, (t) => (t === 'direct' ? NaN : hs(t, (x) => x.cpuUsPerConnection)), 'lower');
    note(`  failed connections (all rounds)`, (t) => (t === 'direct' ? '-' : String(r.handshakes.filter((x) => x.target === t).reduce((a, x) => a + x.result.errors, 0))));
  }
  out.push('', table(header, rows));
  if (r.pipeTransfer.up.length > 0) {
    const [up, down] = [med(r.pipeTransfer.up), med(r.pipeTransfer.down)];
    out.push(
      `(Node's floor in the same rotation, a bare Node process that only terminates TLS and pipes the bytes (bench/lib/bare-node.ts pipe), median of ${r.pipeTransfer.up.length}: ` +
        `up ${fmt(up)} MB/s, ÷ the best peer ${vsBest(up, bestPeer((p) => med(r.upload[p]), 'higher'))}, down ${fmt(down)} MB/s, ÷ the best peer ${vsBest(down, bestPeer((p) => med(r.download[p]), 'higher'))}; ` +
        `the proxy ÷ the pipe: up ${ratio(med(r.upload.proxy), up)}, down ${ratio(med(r.download.proxy), down)})`,
    );
  }
  if (PHASES.has('load')) {
    out.push(
      `(request load: wrk, 1 thread, ${LOAD_CONNECTIONS} connections, ${LOAD_SECONDS} s per run, median of ${LOAD_ROUNDS} runs; direct is plain HTTP without auth;\n` +
        ` the proxy runs bench/peers/registry-gate.config.json, response cache on (cache.ttlSeconds 2); "cache off" is a second proxy with cache.ttlSeconds 0;\n` +
        ` "best peer" is the best of ${ACTIVE_PEERS.join(', ')} at that figure: the highest rate, the lowest latency or CPU)`,
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
    out.push('(peak RSS, VmHWM reset before each step: direct = the registry; nginx = its workers summed; the others their process)');
    out.push(
      `proxy mark-compacts (full GCs) per GiB uploaded: ` +
        SCALING.map((n) => `${fmt(r.scaling.find((y) => y.n === n && y.target === 'proxy')?.majorsPerGiB ?? NaN, 1)} with ${n} at once`).join(', ') +
        ' (its metrics, nodejs_gc_duration_seconds_count{kind="major"})',
    );
  }
  if (PHASES.has('big')) {
    const cpu = (c: CpuSplit, t: TargetName): string => `${fmt(c.client, 2)} / ${t === 'direct' ? '-' : fmt(c.front, 2)} / ${fmt(c.registry, 2)}`;
    const brows = r.big.map((b) => [b.target, fmt(b.upMBps), fmt(b.downMBps), cpu(b.up, b.target), cpu(b.down, b.target), fmt(b.peakMiB)]);
    out.push('', table([`${BIG_BYTES / GiB} GiB blob`, 'up MB/s', 'down MB/s', 'CPU s/GiB up: client/front/registry', 'CPU s/GiB down', 'peak RSS MiB during upload'], brows));
    out.push('(front = the peer\'s processes or the proxy; client = the bench process and its curl: TLS and test data, not the digest check after each download; RSS as above)');
    if (r.nodePipe) {
      const b = big('proxy');
      out.push(
        `(floor: a bare Node process that only terminates TLS and pipes the bytes to the registry, bench/lib/bare-node.ts pipe: ` +
          `up ${fmt(r.nodePipe.upMBps)} MB/s at ${fmt(r.nodePipe.upCpu, 2)} CPU s/GiB, down ${fmt(r.nodePipe.downMBps)} MB/s at ${fmt(r.nodePipe.downCpu, 2)} CPU s/GiB;\n` +
          ` the proxy's CPU per GiB ÷ the pipe's, the 2 GiB runs minutes apart: up ${ratio(b?.up.front ?? NaN, r.nodePipe.upCpu)}, down ${ratio(b?.down.front ?? NaN, r.nodePipe.downCpu)})`,
      );
    }
    if (r.floorRounds.length > 0) {
      const list = (pick: (x: Results['floorRounds'][number]) => number): string => r.floorRounds.map((x) => fmt(pick(x), 2)).join(' ');
      const way = (w: 'up' | 'down'): string =>
        `${w}: the proxy ÷ the pipe ${list((x) => x.proxy[w] / x.pipe[w])} (median ${fmt(floorRatio(r, w), 2)}), ` +
        `the relay ÷ the pipe ${list((x) => x.relay[w] / x.pipe[w])} (median ${fmt(floorRatio(r, w, 'relay'), 2)}), ` +
        `the proxy ÷ the relay median ${fmt(floorRatio(r, w, 'proxy', 'relay'), 2)}; ` +
        `CPU s/GiB proxy ${list((x) => x.proxy[w])}, pipe ${list((x) => x.pipe[w])}, relay ${list((x) => x.relay[w])}`;
      out.push(
        `(${r.floorRounds.length} rounds of ${FLOOR_BYTES / MiB} MiB runs seconds apart, each side going first in turn, against the pipe and against ` +
          `a bare node:http relay, bench/lib/bare-node.ts relay: what reading HTTP costs in Node with nothing else;\n ${way('up')};\n ${way('down')})`,
      );
    }
  }
  if (r.crowd.length > 0) {
    const c = (pick: (x: CrowdResult) => number): number => median(r.crowd.map(pick));
    out.push(
      '',
      `${CROWD.toLocaleString('en')} concurrent anonymous pulls of ${PUBLIC_APP}:latest (new TLS connection, GET /token, GET manifest), median of ${r.crowd.length} rounds: ` +
        `p50 ${fmt(c((x) => x.p50ms))} ms, p99 ${fmt(c((x) => x.p99ms))} ms, all done in ${fmt(c((x) => x.seconds), 2)} s, errors ${r.crowd.map((x) => x.errors).join('/')}`,
    );
  }
  if (PHASES.has('rules')) {
    out.push('', table(['access rules', 'rules', 'µs per decision'], r.rules.map((x) => [x.label, String(x.rules), fmt(x.usPerDecision, 2)])));
    out.push('(in-process: groups lookup + first-match decision for a mix of own-team pushes, public pulls and refusals; the worst case is informational)');
  }
  if (PHASES.has('metrics')) out.push('', `metrics: ${fmt(r.metricsUs, 2)} µs per request (in-process: one observe() with a push/pull label mix and a transfer gauge step)`);
  if (PHASES.has('noise')) {
    out.push(
      '',
      table(
        ['failed logins from one address', 'requests', 'answers', 'audit lines', 'access-log lines', 'log bytes per request', 'seconds'],
        r.noise.map((x) => [x.label, String(x.requests), Object.entries(x.statuses).map(([status, n]) => `${n} × ${status}`).join(', '), String(x.auditLines), String(x.logLines), fmt(x.logBytesPerRequest), fmt(x.seconds, 1)]),
      ),
    );
    out.push('(8 in flight on keep-alive connections; the audit file gains a line per failed login of a user from an address and then one summary per minute; the access log a line per request)');
  }
  if (PHASES.has('logins')) {
    out.push('', table(['login through the identify chain', 'first (ms)', 'remembered (µs)', 'first logins/s, 8 at once'], r.logins.map((x) => [x.source, fmt(x.firstMs, 2), fmt(x.rememberedUs, 2), fmt(x.perSecondAt8)])));
    out.push('(in-process, limits off, each source first in the chain unless said; first: the source is asked, medians of 16 users × 3 rounds; remembered: the same login again within the cache time; a token login looks its owner up in htpasswd)');
  }
  if (r.crowdRssMiB) out.push(`(proxy RSS ${fmt(r.crowdRssMiB.before)} MiB before the first crowd, ${fmt(r.crowdRssMiB.after)} MiB after the last)`);
  const perConnection = (x: IdleResult): string => `${fmt(((x.rssMiB - x.rssBeforeMiB) * 1024) / x.held, 1)} KiB per connection`;
  if (r.idle) {
    out.push('', `idle keep-alive TLS connections: ${r.idle.held.toLocaleString('en')} held by the proxy after the whole run, RSS ${fmt(r.idle.rssBeforeMiB)} MiB before, ${fmt(r.idle.rssMiB)} MiB with them, ${perConnection(r.idle)} (from ${Math.ceil(IDLE_CONNECTIONS / IDLE_PER_ADDRESS)} loopback addresses, one request each)`);
  }
  if (r.idleFresh) {
    out.push(`  the same against a proxy started for this step (same config): ${r.idleFresh.held.toLocaleString('en')} held, RSS ${fmt(r.idleFresh.rssBeforeMiB)} → ${fmt(r.idleFresh.rssMiB)} MiB, ${perConnection(r.idleFresh)}`);
  }
  if (r.idleBare) {
    out.push(`  the same against a bare Node HTTPS server (bench/lib/bare-node.ts https, plain node, the proxy's certificate, started for this step): ${r.idleBare.held.toLocaleString('en')} held, RSS ${fmt(r.idleBare.rssBeforeMiB)} → ${fmt(r.idleBare.rssMiB)} MiB, ${perConnection(r.idleBare)}`);
    if (r.idleFresh) out.push(`  proxy started for the step ÷ bare server: ${ratio(r.idleFresh.rssMiB, r.idleBare.rssMiB)} with the connections, ${ratio(r.idleFresh.rssBeforeMiB, r.idleBare.rssBeforeMiB)} before them`);
    if (r.idle) out.push(`  proxy after the whole run ÷ bare server: ${ratio(r.idle.rssMiB, r.idleBare.rssMiB)} with the connections, ${ratio(r.idle.rssBeforeMiB, r.idleBare.rssBeforeMiB)} before them (the difference is what the earlier steps left in its heap)`);
  }

  const verdicts: Verdict[] = [];
  const atLeast = (target: string, mine: number, top: Best<string>, factor: number, beside = ''): void => {
    const x = mine / top.value;
    verdicts.push({ target, measured: `${Number.isFinite(x) ? x.toFixed(2) : '-'} × ${top.name}${beside}`, pass: x >= factor });
  };
  const atMost = (target: string, mine: number, top: Best<string>, digits: number, unit: string): void => {
    verdicts.push({ target, measured: `${fmt(mine, digits)} ${unit} vs ${fmt(top.value, digits)} ${unit} (${top.name})`, pass: mine <= top.value });
  };
  if (PHASES.has('rules')) {
    const teams = r.rules[0]!;
    verdicts.push({ target: 'rule evaluation with 1,000 rules < 5 µs per request', measured: `${fmt(teams.usPerDecision, 2)} µs`, pass: teams.usPerDecision < 5 });
  }
  if (PHASES.has('metrics')) verdicts.push({ target: 'metrics < 5 µs per request', measured: `${fmt(r.metricsUs, 2)} µs`, pass: r.metricsUs < 5 });
  for (const x of r.noise) {
    verdicts.push({ target: `${NOISE_REQUESTS.toLocaleString('en')} failed logins (${x.label}) leave ≤ 50 audit lines`, measured: `${x.auditLines} lines`, pass: x.auditLines <= 50 });
  }
  if (PHASES.has('transfer')) {
    const floor = (way: 'up' | 'down', top: Best<string>): string => `; the bare Node pipe: ${fmt(med(r.pipeTransfer[way]) / top.value, 2)} × ${top.name}`;
    const upBest = bestPeer((p) => med(r.upload[p]), 'higher');
    atLeast('upload ≥ 0.97 × the best peer', med(r.upload.proxy), upBest, 0.97, floor('up', upBest));
    const up = med(r.upload.proxy) / med(r.upload.direct);
    verdicts.push({ target: 'upload ≥ 0.95 × direct', measured: `${up.toFixed(2)} × direct`, pass: up >= 0.95 });
    const downBest = bestPeer((p) => med(r.download[p]), 'higher');
    atLeast('download ≥ 1.0 × the best peer', med(r.download.proxy), downBest, 1.0, floor('down', downBest));
  }
  if (PHASES.has('scaling')) {
    for (const n of SCALING.filter((x) => x > 1)) {
      atLeast(`${n} concurrent uploads ≥ 1.0 × the best peer`, scaled(n, 'proxy')?.upMBps ?? NaN, bestPeer((p) => scaled(n, p)?.upMBps ?? NaN, 'higher'), 1.0);
      atLeast(`${n} concurrent downloads ≥ 1.0 × the best peer`, scaled(n, 'proxy')?.downMBps ?? NaN, bestPeer((p) => scaled(n, p)?.downMBps ?? NaN, 'higher'), 1.0);
    }
  }
  if (PHASES.has('big')) {
    atMost('front CPU per GiB uploaded ≤ the best peer', big('proxy')?.up.front ?? NaN, bestPeer((p) => big(p)?.up.front ?? NaN, 'lower'), 2, 's');
    atMost('front CPU per GiB downloaded ≤ the best peer', big('proxy')?.down.front ?? NaN, bestPeer((p) => big(p)?.down.front ?? NaN, 'lower'), 2, 's');
  }
  if (PHASES.has('load')) {
    for (const auth of ['bearer', 'basic'] as const) {
      const label = auth === 'bearer' ? 'Bearer' : 'Basic';
      const p = load(proxyKey('manifest', auth), (w) => w.rps);
      atLeast(`authenticated manifest GET (${label}) ≥ 2 × the best peer`, p, bestPeer((x) => load(`manifest/${x}`, (w) => w.rps), 'higher'), 2);
      const vsDirect = p / load('manifest/direct', (w) => w.rps);
      verdicts.push({ target: `authenticated manifest GET (${label}) ≥ 0.8 × direct`, measured: `${vsDirect.toFixed(2)} × direct`, pass: vsDirect >= 0.8 });
      for (const kind of ['manifest', 'blob'] as const) {
        const what = kind === 'manifest' ? 'manifest GET' : 'blob HEAD';
        atMost(`p99 ${what} (${label}) ≤ the best peer`, load(proxyKey(kind, auth), (w) => w.p99ms), bestPeer((x) => load(`${kind}/${x}`, (w) => w.p99ms), 'lower'), 2, 'ms');
      }
    }
    if (r.load.has('manifest/uncached-basic')) {
      atLeast('manifest GET, cache off ≥ 1.2 × the best peer', load('manifest/uncached-basic', (w) => w.rps), bestPeer((x) => load(`manifest/${x}`, (w) => w.rps), 'higher'), 1.2);
    }
  }
  if (r.handshakes.length > 0) {
    const mine = r.handshakes.filter((x) => x.target === 'proxy');
    const errors = mine.reduce((a, x) => a + x.result.errors, 0);
    verdicts.push({
      target: `${CROWD.toLocaleString('en')} new TLS connections at once to the proxy without an error`,
      measured: errors === 0 ? `0 errors in ${mine.length} crowds` : `${errors} errors, first: ${mine.find((x) => x.result.firstError)?.result.firstError}`,
      pass: errors === 0,
    });
  }
  if (r.crowd.length > 0) {
    const errors = r.crowd.reduce((a, x) => a + x.errors, 0);
    const first = r.crowd.find((x) => x.firstError)?.firstError;
    verdicts.push({ target: `${CROWD.toLocaleString('en')} concurrent anonymous pulls without an error`, measured: errors === 0 ? `0 errors in ${r.crowd.length} rounds` : `${errors} errors, first: ${first}`, pass: errors === 0 });
  }
  if (r.idle) {
    const mb = (r.idle.rssMiB * MiB) / 1e6;
    verdicts.push({ target: `${IDLE_CONNECTIONS.toLocaleString('en')} idle TLS connections held under 400 MB RSS`, measured: `${r.idle.held.toLocaleString('en')} held, ${fmt(mb)} MB`, pass: r.idle.held === IDLE_CONNECTIONS && mb < 400 });
  }
  if (r.floorRounds.length > 0) {
    const x = floorRatio(r, 'up');
    const single = r.nodePipe ? ` (the 2 GiB runs, minutes apart: ${fmt((big('proxy')?.up.front ?? NaN) / r.nodePipe.upCpu, 2)} ×)` : '';
    const floor = `; the bare node:http relay: ${fmt(floorRatio(r, 'up', 'relay'), 2)} × the pipe, the proxy ${fmt(floorRatio(r, 'up', 'proxy', 'relay'), 2)} × the relay`;
    verdicts.push({ target: 'proxy CPU per GiB uploaded ≤ 1.10 × the bare Node pipe', measured: `${fmt(x, 2)} ×, median of ${r.floorRounds.length} rounds${single}${floor}`, pass: x <= 1.1 });
  }
  if (r.idleFresh && r.idleBare) {
    const x = r.idleFresh.rssMiB / r.idleBare.rssMiB;
    verdicts.push({ target: `RSS with ${IDLE_CONNECTIONS.toLocaleString('en')} idle TLS connections ≤ 1.10 × the bare Node server (both started for the step)`, measured: `${fmt(x, 2)} × (${fmt(r.idleFresh.rssMiB)} vs ${fmt(r.idleBare.rssMiB)} MiB)`, pass: x <= 1.1 });
  }
  if (PHASES.has('big')) {
    const b = big('proxy')!;
    const mb = (b.peakMiB * MiB) / 1e6;
    verdicts.push({ target: `proxy peak RSS < 150 MB during the ${BIG_BYTES / GiB} GiB upload`, measured: `${fmt(mb)} MB (${fmt(b.peakMiB)} MiB)`, pass: mb < 150 });
  }
  out.push('', verdictLines(verdicts));
  return { text: out.join('\n'), verdicts };
}

async function crowdPhase(s: Setup, r: Results): Promise<void> {
  const before = statusKb(s.proxy.pid, 'VmRSS') / 1024;
  const g = groups(s);
  const fronts = TARGETS.filter((t): t is Exclude<TargetName, 'direct'> => t !== 'direct');
  for (let round = 0; round < CROWD_ROUNDS; round++) {
    for (const t of rotate(fronts, round)) {
      const url = t === 'proxy' ? s.proxy.url : s.peers[t].url;
      const window = openWindow(g[t]);
      const result = await crowdHandshakes({ port: Number(new URL(url).port), ca: t === 'proxy' ? s.proxy.caPem : s.ca.certPem, count: CROWD });
      const cpuUsPerConnection = (window.cpuSeconds() * 1e6) / CROWD;
      r.handshakes.push({ target: t, result, cpuUsPerConnection });
      log(`handshake crowd round ${round + 1} ${t}: ${CROWD} new TLS connections, p50 ${fmt(result.p50ms)} ms, p99 ${fmt(result.p99ms)} ms, ${fmt(cpuUsPerConnection)} CPU µs each, ${result.errors} errors${result.firstError ? ` (${result.firstError})` : ''}`);
    }
  }
  for (let round = 0; round < CROWD_ROUNDS; round++) {
    const result = await crowdPull({ url: s.proxy.url, ca: s.proxy.caPem, service: s.proxy.host, repository: PUBLIC_APP, tag: 'latest', accept: MANIFEST_V2, count: CROWD });
    r.crowd.push(result);
    log(`crowd round ${round + 1}: ${CROWD} anonymous pulls, p50 ${fmt(result.p50ms)} ms, p99 ${fmt(result.p99ms)} ms, ${fmt(result.seconds, 2)} s, ${result.errors} errors${result.firstError ? ` (${result.firstError})` : ''}`);
  }
  r.crowdRssMiB = { before, after: statusKb(s.proxy.pid, 'VmRSS') / 1024 };
}

/** bench/lib/bare-node.ts with the proxy's own certificate and key. */
async function startBareNode(s: Setup, mode: 'https' | 'pipe' | 'relay', upstream?: Registry): Promise<{ url: string; pid: number; stop(): Promise<unknown> }> {
  const tlsDir = path.join(s.dir, 'proxy', 'state', 'tls');
  const port = await freePort();
  const args = [await bareNodeScript(s.dir), mode, path.join(tlsDir, 'self-signed-cert.pem'), path.join(tlsDir, 'self-signed-key.pem'), String(port)];
  if (upstream) args.push(upstream.host);
  const bare = spawnLong(process.execPath, args, { name: `bare-node ${mode}`, env: { NODE_OPTIONS: '' } });
  await waitUntil(async () => bare.stdoutTail().includes('listening'), { timeoutMs: 15_000, what: `bare-node ${mode}` });
  return { url: `https://127.0.0.1:${port}`, pid: bare.pid, stop: () => bare.stop() };
}

/**
 * bench/lib/bare-node.ts as plain JavaScript, run by plain node as the proxy is: under tsx its
 * loader thread alone adds ~28 MiB to the process, which would flatter every ratio to the floor.
 */
async function bareNodeScript(dir: string): Promise<string> {
  const out = path.join(dir, 'bare-node.mjs');
  const source = await readFile(path.join(repoRoot, 'bench', 'lib', 'bare-node.ts'), 'utf8');
  const { outputText } = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } });
  await writeFile(out, outputText);
  return out;
}

/** The idle step against a bare Node HTTPS server: Node's own cost of a TLS connection, the floor under the proxy's. */
async function idleBareNode(s: Setup): Promise<IdleResult> {
  const bare = await startBareNode(s, 'https');
  try {
    return await holdIdleConnections(Number(new URL(bare.url).port), s.proxy.caPem, IDLE_CONNECTIONS, bare.pid);
  } finally {
    await bare.stop();
  }
}

/**
 * The idle step against a second proxy with the same config, started for it: the bare server
 * starts fresh too, so the ratio compares what a connection costs and not what an hour of
 * transfers and handshake crowds left in the first proxy's heap (printed beside it).
 */
async function idleFreshProxy(s: Setup): Promise<IdleResult> {
  const dir = path.join(s.dir, 'idle-proxy');
  await mkdir(dir);
  const fresh = await startBenchProxy({ dir, upstream: s.registry.url, htpasswdFile: path.join(s.dir, 'htpasswd') });
  try {
    return await holdIdleConnections(Number(new URL(fresh.url).port), fresh.caPem, IDLE_CONNECTIONS, fresh.pid);
  } finally {
    await fresh.stop();
  }
}

async function main(): Promise<number> {
  const hardLimit = setTimeout(() => {
    log(`still running after ${HARD_LIMIT_MS / 60_000} minutes: giving up`);
    process.exit(3);
  }, HARD_LIMIT_MS);
  hardLimit.unref();
  const startedAt = new Date();
  log(`starting the registry, ${ACTIVE_PEERS.join(', ')} and registry-gate`);
  const s = await setUp();
  const r: Results = {
    upload: perTarget(() => []),
    download: perTarget(() => []),
    downloadInline: perTarget(() => []),
    load: new Map(),
    scaling: [],
    crowd: [],
    handshakes: [],
    crowdRssMiB: null,
    idleBare: null,
    nodePipe: null,
    floorRounds: [],
    pipeTransfer: { up: [], down: [] },
    big: [],
    rules: [],
    metricsUs: 0,
    logins: [],
    noise: [],
    idle: null,
    idleFresh: null,
  };
  try {
    if (PHASES.has('rules')) r.rules = measureRuleCost();
    if (PHASES.has('metrics')) r.metricsUs = measureMetricsCost();
    if (PHASES.has('logins')) {
      log('measuring logins: htpasswd, a directory (slapd), access tokens, OIDC ID tokens');
      r.logins = await measureLoginCost();
    }
    await warmUp(s);
    if (PHASES.has('transfer')) await transferPhase(s, r);
    if (PHASES.has('load')) await loadPhase(s, r);
    if (PHASES.has('scaling')) await scalingPhase(s, r);
    if (PHASES.has('big')) await bigPhase(s, r);
    // The two steps of many connections come last: the memory they leave behind would count in the transfers' peaks.
    if (PHASES.has('crowd')) await crowdPhase(s, r);
    if (PHASES.has('idle')) {
      log(`opening ${IDLE_CONNECTIONS} idle TLS connections to the proxy`);
      r.idle = await holdIdleConnections(Number(new URL(s.proxy.url).port), s.proxy.caPem, IDLE_CONNECTIONS, s.proxy.pid);
      log(`and to a proxy started for this step`);
      r.idleFresh = await idleFreshProxy(s);
      log(`and to a bare Node HTTPS server with the proxy's certificate`);
      r.idleBare = await idleBareNode(s);
    }
    // Last: it leaves its address and user names closed by the login limits.
    if (PHASES.has('noise')) {
      log(`${NOISE_REQUESTS} failed logins, twice, from one address`);
      const proxyDir = path.join(s.dir, 'proxy');
      r.noise = await measureNoise({ url: s.proxy.url, caPem: s.proxy.caPem, auditFile: path.join(proxyDir, 'audit.jsonl'), logFile: path.join(proxyDir, 'proxy.log') }, '127.0.0.250');
    }
    const logCheck = await s.proxy.checkLog();
    const { text, verdicts } = report(s, r, startedAt, (Date.now() - startedAt.getTime()) / 1000);
    process.stdout.write(`${text}\n`);
    process.stdout.write(`(proxy access log: ${logCheck.requests} request lines, ${logCheck.torn} lines that are not whole JSON)\n`);
    return verdicts.every((v) => v.pass) && logCheck.torn === 0 ? 0 : 1;
  } finally {
    await s.proxy.stop();
    await s.uncached.stop();
    for (const p of ACTIVE_PEERS) await s.peers[p].stop();
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
