/**
 * The soak and fault run: mixed load from real clients and raw HTTP for a set time, while the
 * registry is restarted, Redis is killed and brought back, and thousands of uploads are aborted
 * mid-body. What a client saw committed must still be in the registry at the end ("lost
 * commits"), and the proxy's file descriptors and memory are sampled throughout.
 */
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { writeHtpasswd } from '../../test/harness/htpasswd.js';
import { makeOciImage, type OciImage } from '../../test/harness/oci-image.js';
import { openFds } from '../../test/harness/process.js';
import { disposeProxyConfig, proxyConfig, startProxy } from '../../test/harness/proxy.js';
import { startRedis } from '../../test/harness/redis.js';
import { head, request, type ClientAuth } from '../../test/harness/registry-client.js';
import { startRegistry } from '../../test/harness/registry.js';
import { skopeoCopy } from '../../test/harness/skopeo.js';
import { MANIFEST_V2, schema2Manifest, sha256Digest } from '../../test/harness/small-image.js';
import { makeTempDir, removeTempDir } from '../../test/harness/tmp.js';

export interface SoakOptions {
  seconds: number;
  /** Uploads started and abandoned mid-body over the run. */
  aborts: number;
  /** Registry restarts and Redis kills, spread evenly over the run. */
  registryRestarts: number;
  redisKills: number;
  log?: (line: string) => void;
}

export interface SoakReport {
  seconds: number;
  requests: number;
  commits: number;
  lostCommits: number;
  aborted: number;
  errors: Record<string, number>;
  proxyWarnings: Record<string, number>;
  faults: string[];
  rssMiB: { baseline: number; peak: number; final: number };
  fds: { baseline: number; peak: number; final: number };
}

const USER: ClientAuth & { user: string; pass: string } = { user: 'soak', pass: randomBytes(12).toString('base64url') };
const BLOB_LOOPS = 3;
const PULL_LOOPS = 3;
const SKOPEO_LOOPS = 2;
const ABORT_PARALLEL = 8;
/** Descriptors the proxy may hold beyond its start once the load is gone (pooled keep-alive connections). */
export const FD_SLACK = 12;

const ACCEPT_MANIFESTS = `${MANIFEST_V2}, application/vnd.oci.image.manifest.v1+json`;

type Commit = { repository: string; digest: string; tag?: string };

export async function runSoak(opts: SoakOptions): Promise<SoakReport> {
  const log = opts.log ?? (() => {});
  const work = await makeTempDir('soak');
  const htpasswdFile = path.join(work, 'htpasswd');
  const [registry, redis] = await Promise.all([startRegistry(), startRedis(), writeHtpasswd(htpasswdFile, { [USER.user]: USER.pass })]);
  const config = await proxyConfig({ upstream: registry.url, redis: redis.url, auth: { mode: 'private', htpasswdFile }, log: { level: 'warn' } });
  const proxy = await startProxy(config);
  const images = await Promise.all([1, 2].map((seed) => makeOciImage(path.join(work, `image-${seed}`), { seed, layers: 2, layerBytes: 64 * 1024 })));

  const commits: Commit[] = [];
  const errors: Record<string, number> = {};
  const faults: string[] = [];
  let requests = 0;
  let aborted = 0;
  const fail = (cause: string): void => void (errors[cause] = (errors[cause] ?? 0) + 1);
  const baseline = { rss: proxy.rssKb(), fds: openFds(proxy.pid) };
  const peak = { ...baseline };
  const sampler = setInterval(() => {
    peak.rss = Math.max(peak.rss, proxy.rssKb());
    peak.fds = Math.max(peak.fds, openFds(proxy.pid));
  }, 1000);

  const started = Date.now();
  const deadline = started + opts.seconds * 1000;
  const running = (): boolean => Date.now() < deadline;
  const base = proxy.url;
  const agent = new http.Agent({ keepAlive: true, maxSockets: BLOB_LOOPS + PULL_LOOPS });
  const call = async (url: string, o: Parameters<typeof request>[1] = {}) => {
    try {
      const res = await request(url, { auth: USER, agent, timeoutMs: 30_000, ...o });
      requests++;
      return res;
    } catch (err) {
      fail(`client: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      return null;
    }
  };
  const expect = (res: Awaited<ReturnType<typeof call>>, status: number, what: string): boolean => {
    if (!res) return false;
    if (res.status === status) return true;
    let code = '';
    try {
      const error = (JSON.parse(res.body.toString()) as { errors: { code: string; message: string }[] }).errors[0]!;
      code = ` ${error.code}${res.status >= 500 ? ` (${error.message.slice(0, 60)})` : ''}`;
    } catch {
      code = res.body.length ? ` ${res.body.toString().slice(0, 60)}` : '';
    }
    fail(`${what}: ${res.status}${code}`);
    return false;
  };

  /** POST, PATCH, PUT (commit): true when the registry took the blob. */
  const uploadBlob = async (repository: string, data: Buffer, digest: string): Promise<boolean> => {
    const start = await call(`${base}/v2/${repository}/blobs/uploads/`, { method: 'POST' });
    if (!expect(start, 202, 'upload start')) return false;
    const patched = await call(new URL(String(start!.headers.location), base).href, { method: 'PATCH', body: data, headers: { 'content-type': 'application/octet-stream' } });
    if (!expect(patched, 202, 'upload PATCH')) return false;
    const commitAt = new URL(String(patched!.headers.location), base);
    commitAt.searchParams.set('digest', digest);
    return expect(await call(commitAt.href, { method: 'PUT' }), 201, 'upload commit');
  };

  /** A fresh random layer and a config, then a manifest naming them: each accepted step is a commit. */
  const blobLoop = async (n: number): Promise<void> => {
    const repository = `soak/blobs-${n}`;
    for (let i = 0; running(); i++) {
      const layer = randomBytes(256 * 1024);
      const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, n, i }));
      const [layerDigest, configDigest] = [sha256Digest(layer), sha256Digest(config)];
      if (!(await uploadBlob(repository, layer, layerDigest))) continue;
      commits.push({ repository, digest: layerDigest });
      if (!(await uploadBlob(repository, config, configDigest))) continue;
      commits.push({ repository, digest: configDigest });
      const manifest = schema2Manifest({ digest: configDigest, size: config.length }, [{ digest: layerDigest, size: layer.length }]);
      const tag = `t${i}`;
      if (expect(await call(`${base}/v2/${repository}/manifests/${tag}`, { method: 'PUT', body: manifest, headers: { 'content-type': MANIFEST_V2 } }), 201, 'manifest PUT')) {
        commits.push({ repository, digest: sha256Digest(manifest), tag });
      }
    }
  };

  /** Reads back what was committed: manifest by tag, then its layer, digest checked. */
  const pullLoop = async (): Promise<void> => {
    while (running()) {
      const tagged = commits.filter((c) => c.tag);
      const pick = tagged[Math.floor(Math.random() * tagged.length)];
      if (!pick) {
        await new Promise((r) => setTimeout(r, 200));
        continue;
      }
      const manifest = await call(`${base}/v2/${pick.repository}/manifests/${pick.tag}`, { headers: { accept: ACCEPT_MANIFESTS } });
      if (!expect(manifest, 200, 'manifest GET')) continue;
      if (sha256Digest(manifest!.body) !== pick.digest) fail('manifest GET: wrong digest');
      const layer = (JSON.parse(manifest!.body.toString()) as { layers: { digest: string }[] }).layers[0]!.digest;
      const blob = await call(`${base}/v2/${pick.repository}/blobs/${layer}`);
      if (expect(blob, 200, 'blob GET') && sha256Digest(blob!.body) !== layer) fail('blob GET: wrong digest');
    }
  };

  /** skopeo pushes through the token flow, tag after tag. */
  const skopeoLoop = async (n: number, image: OciImage): Promise<void> => {
    for (let i = 0; running(); i++) {
      const repository = `soak/skopeo-${n}`;
      const result = await skopeoCopy(image.ociRef, `docker://${proxy.host}/${repository}:t${i}`, { tlsVerify: false, destCreds: USER, allowFail: true, timeoutMs: 60_000 });
      requests++;
      if (result.code === 0 && result.digest === image.manifestDigest) commits.push({ repository, digest: image.manifestDigest, tag: `t${i}` });
      else fail(`skopeo: ${(/msg="([^"]*)"/.exec(result.stderr)?.[1] ?? result.stderr.trim().split('\n').at(-1) ?? '').replace(/https?:\/\/\S+/g, '<url>').slice(0, 100)}`);
    }
  };

  /** Starts an upload and walks away halfway through a 1 MiB PATCH. */
  const abortOne = async (): Promise<void> => {
    const start = await call(`${base}/v2/soak/aborts/blobs/uploads/`, { method: 'POST' });
    if (!expect(start, 202, 'abort: upload start')) return;
    const location = new URL(String(start!.headers.location), base);
    await new Promise<void>((resolve) => {
      const socket = net.connect(proxy.port, '127.0.0.1');
      socket.on('error', () => resolve());
      socket.on('close', () => resolve());
      socket.on('connect', () => {
        socket.write(
          `PATCH ${location.pathname}${location.search} HTTP/1.1\r\nHost: ${proxy.host}\r\nAuthorization: Basic ${Buffer.from(`${USER.user}:${USER.pass}`).toString('base64')}\r\nContent-Length: ${1024 * 1024}\r\n\r\n`,
        );
        socket.write(randomBytes(64 * 1024), () => setTimeout(() => socket.destroy(), 5));
      });
    });
    aborted++;
  };
  const abortLoop = async (): Promise<void> => {
    const perMs = opts.aborts / (opts.seconds * 1000);
    // The whole quota, even when it lags behind the clock a little at the end.
    while (aborted < opts.aborts && Date.now() < deadline + 30_000) {
      const due = Math.min(opts.aborts, Math.ceil((Date.now() - started) * perMs));
      if (aborted >= due) {
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      await Promise.all(Array.from({ length: Math.min(ABORT_PARALLEL, due - aborted) }, () => abortOne()));
    }
  };

  const faultLoop = async (): Promise<void> => {
    const plan = [
      ...Array.from({ length: opts.registryRestarts }, (_, i) => ({ at: ((i + 1) / (opts.registryRestarts + 1)) * opts.seconds, kind: 'registry' as const })),
      ...Array.from({ length: opts.redisKills }, (_, i) => ({ at: ((i + 0.5) / opts.redisKills) * opts.seconds, kind: 'redis' as const })),
    ].sort((a, b) => a.at - b.at);
    for (const fault of plan) {
      const wait = started + fault.at * 1000 - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      if (!running()) return;
      const t = ((Date.now() - started) / 1000).toFixed(0);
      if (fault.kind === 'registry') {
        await registry.restart();
        faults.push(`${t} s: registry restarted`);
      } else {
        await redis.kill();
        await new Promise((r) => setTimeout(r, 3_000));
        await redis.start();
        faults.push(`${t} s: redis killed, back 3 s later`);
      }
      log(`  ${faults.at(-1)}`);
    }
  };

  log(`soak: ${opts.seconds} s, ${opts.aborts} aborted uploads, ${opts.registryRestarts} registry restarts, ${opts.redisKills} redis kills`);
  await Promise.all([
    ...Array.from({ length: BLOB_LOOPS }, (_, n) => blobLoop(n)),
    ...Array.from({ length: PULL_LOOPS }, () => pullLoop()),
    ...Array.from({ length: SKOPEO_LOOPS }, (_, n) => skopeoLoop(n, images[n % images.length]!)),
    abortLoop(),
    faultLoop(),
  ]);
  agent.destroy();

  // The load is gone: the descriptors should come back; give pooled connections time to idle out.
  const settle = Date.now() + 30_000;
  while (Date.now() < settle && openFds(proxy.pid) > baseline.fds + FD_SLACK) await new Promise((r) => setTimeout(r, 500));
  clearInterval(sampler);
  const final = { rss: proxy.rssKb(), fds: openFds(proxy.pid) };

  let lost = 0;
  for (const c of commits) {
    const url = c.tag ? `${registry.url}/v2/${c.repository}/manifests/${c.tag}` : `${registry.url}/v2/${c.repository}/blobs/${c.digest}`;
    const res = await head(url, { headers: { accept: ACCEPT_MANIFESTS } });
    if (res.status !== 200 || (c.tag && res.headers['docker-content-digest'] !== c.digest)) lost++;
  }

  const proxyWarnings: Record<string, number> = {};
  for (const line of proxy.logs()) if (typeof line.msg === 'string' && line.level !== undefined && Number(line.level) >= 40) proxyWarnings[line.msg.slice(0, 100)] = (proxyWarnings[line.msg.slice(0, 100)] ?? 0) + 1;

  await proxy.stop();
  await Promise.all([registry.stop(), redis.stop()]);
  await disposeProxyConfig(config);
  await removeTempDir(work);
  const mib = (kb: number) => Math.round((kb / 1024) * 10) / 10;
  return {
    seconds: opts.seconds,
    requests,
    commits: commits.length,
    lostCommits: lost,
    aborted,
    errors,
    proxyWarnings,
    faults,
    rssMiB: { baseline: mib(baseline.rss), peak: mib(peak.rss), final: mib(final.rss) },
    fds: { baseline: baseline.fds, peak: peak.fds, final: final.fds },
  };
}

export function formatSoak(r: SoakReport): string {
  const rows = [
    `duration            ${r.seconds} s`,
    `requests served     ${r.requests}`,
    `commits             ${r.commits} (blobs and manifests a client saw accepted)`,
    `lost commits        ${r.lostCommits}`,
    `aborted uploads     ${r.aborted}`,
    `faults              ${r.faults.join('; ') || 'none'}`,
    `proxy RSS (MiB)     baseline ${r.rssMiB.baseline}, peak ${r.rssMiB.peak}, final ${r.rssMiB.final}`,
    `proxy descriptors   baseline ${r.fds.baseline}, peak ${r.fds.peak}, final ${r.fds.final}`,
    'errors by cause (what clients saw):',
    ...(Object.keys(r.errors).length ? Object.entries(r.errors).sort((a, b) => b[1] - a[1]).map(([k, v]) => `  ${String(v).padStart(6)}  ${k}`) : ['  none']),
    'proxy warnings and errors (log lines):',
    ...(Object.keys(r.proxyWarnings).length ? Object.entries(r.proxyWarnings).sort((a, b) => b[1] - a[1]).map(([k, v]) => `  ${String(v).padStart(6)}  ${k}`) : ['  none']),
  ];
  return rows.join('\n');
}
