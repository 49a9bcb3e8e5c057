import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { authHeader, deterministicStream, pushBlobChunked, type ClientAuth } from '../../test/harness/registry-client.js';
import { makeTempDir } from '../../test/harness/tmp.js';

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

/** What a client needs to talk to one target. */
export interface Endpoint {
  url: string;
  ca?: string;
  auth?: ClientAuth;
}

export interface Blob {
  digest: string;
  bytes: number;
}

/** Bytes per PATCH: big layers arrive in several PATCHes, each with Content-Range. */
export const CHUNK_BYTES = 64 * MiB;

let nextSeed = 1;

/** POST → PATCH × n → PUT ?digest=; the registry refuses the PUT unless the digest of what arrived matches. */
export async function upload(target: Endpoint, repo: string, bytes: number): Promise<Blob> {
  const result = await pushBlobChunked(target.url, repo, deterministicStream(bytes, nextSeed++), {
    chunkBytes: CHUNK_BYTES,
    auth: target.auth,
    ca: target.ca,
  });
  if (result.bytes !== bytes) throw new Error(`upload to ${target.url}: sent ${result.bytes} of ${bytes} bytes`);
  return { digest: result.digest, bytes };
}

/**
 * GET of a blob by curl, piped into `openssl dgst -sha256`, and compared with its digest. Not in
 * this process: a Node client spends ~1.6 s of one core per GiB on TLS, streams and sha256, so at
 * ~650 MB/s it, not the target, set the pace, and nginx and the proxy measured the same. curl and
 * openssl split that work over two processes at about half the CPU.
 */
export async function download(target: Endpoint, repo: string, blob: Blob): Promise<void> {
  const url = new URL(`/v2/${repo}/blobs/${blob.digest}`, target.url);
  const args = ['--silent', '--show-error', '--fail', '--http1.1', '--output', '-', '--write-out', '%{stderr}%{size_download}\n', '--max-time', '600'];
  if (target.ca) args.push('--cacert', await pemFile(target.ca));
  if (target.auth) args.push('--header', `@${await headerFile(`authorization: ${authHeader(target.auth)}`)}`);
  args.push(url.href);
  const { stdout, stderr, code } = await runPipeline(args);
  const received = Number(stderr.trim().split('\n').pop());
  const digest = `sha256:${stdout.trim().split(' ')[0]}`;
  if (code !== 0 || received !== blob.bytes || digest !== blob.digest) {
    throw new Error(`GET ${url.href}: exit ${code}, got ${received} bytes with ${digest}, expected ${blob.bytes} with ${blob.digest} (${stderr.trim()})`);
  }
}

async function runPipeline(curlArgs: string[]): Promise<{ stdout: string; stderr: string; code: number | null }> {
  const curl = spawn('curl', curlArgs, { stdio: ['ignore', 'pipe', 'pipe'] });
  const hash = spawn('openssl', ['dgst', '-sha256', '-r'], { stdio: [curl.stdout, 'pipe', 'inherit'] });
  // openssl has its own copy of the pipe; ours would keep curl's 'close' from ever coming.
  curl.stdout.destroy();
  let stdout = '';
  let stderr = '';
  curl.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  hash.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  const [[curlCode], [hashCode]] = (await Promise.all([once(curl, 'close'), once(hash, 'close')])) as [number | null][];
  return { stdout, stderr, code: curlCode !== 0 ? curlCode! : hashCode! };
}

const files = new Map<string, Promise<string>>();
let scratchDir: Promise<string> | null = null;

/** Files for curl's --cacert and --header @file: credentials stay out of argv (and `ps`). */
function fileFor(kind: string, content: string): Promise<string> {
  const key = `${kind}\n${content}`;
  let made = files.get(key);
  if (!made) {
    // Removed at exit by the harness's cleanup, like every test temp dir.
    scratchDir ??= makeTempDir('bench-curl');
    made = scratchDir.then(async (dir) => {
      const file = path.join(dir, `${kind}-${files.size}`);
      await writeFile(file, content, { mode: 0o600 });
      return file;
    });
    files.set(key, made);
  }
  return made;
}

const pemFile = (pem: string): Promise<string> => fileFor('ca', pem);
const headerFile = (line: string): Promise<string> => fileFor('header', `${line}\n`);

/** Runs `n` copies of `job` at once; returns the wall time in seconds and the results. */
export async function concurrently<T>(n: number, job: (i: number) => Promise<T>): Promise<{ seconds: number; results: T[] }> {
  const started = performance.now();
  const results = await Promise.all(Array.from({ length: n }, (_, i) => job(i)));
  return { seconds: (performance.now() - started) / 1000, results };
}
