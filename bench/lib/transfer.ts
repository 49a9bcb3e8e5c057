import { createHash } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { performance } from 'node:perf_hooks';
import { authHeader, deterministicStream, pushBlobChunked, type ClientAuth } from '../../test/harness/registry-client.js';

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

/** GET of a blob, hashed on arrival and compared with its digest. */
export function download(target: Endpoint, repo: string, blob: Blob): Promise<void> {
  const url = new URL(`/v2/${repo}/blobs/${blob.digest}`, target.url);
  const mod = url.protocol === 'https:' ? https : http;
  const headers: http.OutgoingHttpHeaders = target.auth ? { authorization: authHeader(target.auth) } : {};
  return new Promise((resolve, reject) => {
    const req = mod.get(url, { agent: false, headers, ca: target.ca, timeout: 120_000 }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`GET ${url.href} answered ${res.statusCode}`));
        return;
      }
      const hash = createHash('sha256');
      let received = 0;
      res.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        received += chunk.length;
      });
      res.on('end', () => {
        const digest = `sha256:${hash.digest('hex')}`;
        if (received !== blob.bytes || digest !== blob.digest) {
          reject(new Error(`GET ${url.href}: got ${received} bytes with ${digest}, expected ${blob.bytes} with ${blob.digest}`));
        } else {
          resolve();
        }
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url.href}: idle for 120 s`)));
    req.on('error', reject);
  });
}

/** Runs `n` copies of `job` at once; returns the wall time in seconds and the results. */
export async function concurrently<T>(n: number, job: (i: number) => Promise<T>): Promise<{ seconds: number; results: T[] }> {
  const started = performance.now();
  const results = await Promise.all(Array.from({ length: n }, (_, i) => job(i)));
  return { seconds: (performance.now() - started) / 1000, results };
}
