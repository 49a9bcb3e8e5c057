import { createHash, randomInt } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { deterministicStream } from './deterministic-stream.js';
import { skopeo } from './skopeo.js';
import { tarEnd, tarHeader, tarPadding } from './tar.js';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';

export interface OciImageOptions {
  /** Size of the random file inside the layer (default 256 KiB). */
  layerBytes?: number;
  /** Same seed → same digests. Default: random, so two images never collide in one registry. */
  seed?: number;
  /** Tag recorded in index.json (default "latest"). */
  tag?: string;
  /** How many layers (default 1); layer i holds the data of seed + i. */
  layers?: number;
}

export interface OciImage {
  layoutDir: string;
  /** "oci:<dir>:<tag>", a skopeo source/destination. */
  ociRef: string;
  tag: string;
  seed: number;
  manifestDigest: string;
  manifestSize: number;
  configDigest: string;
  /** Digest of the (first) gzip'd layer blob (what the registry stores). */
  layerDigest: string;
  /** Every layer's digest, in manifest order. */
  layerDigests: string[];
  layerSize: number;
  /** Digest of the uncompressed tar (the config's rootfs.diff_ids entry). */
  diffId: string;
}

class Hasher extends Transform {
  readonly hash = createHash('sha256');
  bytes = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    cb(null, chunk);
  }
}

function dockerArch(): string {
  const map: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x' };
  return map[process.arch] ?? process.arch;
}

async function writeBlob(blobsDir: string, data: Buffer): Promise<{ digest: string; size: number }> {
  const hex = createHash('sha256').update(data).digest('hex');
  await writeFile(path.join(blobsDir, hex), data);
  return { digest: `sha256:${hex}`, size: data.length };
}

async function* layerTar(fileBytes: number, seed: number): AsyncGenerator<Buffer> {
  const readme = Buffer.from(`registry-gate test layer, seed ${seed}\n`);
  yield tarHeader('README', readme.length);
  yield readme;
  yield tarPadding(readme.length);
  yield tarHeader('data.bin', fileBytes);
  for await (const chunk of deterministicStream(fileBytes, seed)) yield chunk as Buffer;
  yield tarPadding(fileBytes);
  yield tarEnd();
}

/**
 * Writes a valid single-platform OCI image layout into `dir` (created if missing): one config,
 * gzip'd tar layers each holding `layerBytes` of pseudo-random data. The layer is streamed to disk,
 * so large layers do not need the memory.
 */
export async function makeOciImage(dir: string, opts: OciImageOptions = {}): Promise<OciImage> {
  const seed = opts.seed ?? randomInt(1, 2 ** 31);
  const tag = opts.tag ?? 'latest';
  const blobsDir = path.join(dir, 'blobs', 'sha256');
  await mkdir(blobsDir, { recursive: true });

  const layers: { digest: string; size: number; diffId: string }[] = [];
  for (let i = 0; i < (opts.layers ?? 1); i++) {
    const tarHash = new Hasher();
    const gzHash = new Hasher();
    const tmpLayer = path.join(blobsDir, '.layer.tmp');
    // Level 1: the payload is random, so higher levels only burn CPU. mtime 0 keeps the gzip
    // header (and so the digest) reproducible.
    const gzip = createGzip({ level: 1 });
    await pipeline(Readable.from(layerTar(opts.layerBytes ?? 256 * 1024, seed + i)), tarHash, gzip, gzHash, createWriteStream(tmpLayer));
    const layerHex = gzHash.hash.digest('hex');
    await rename(tmpLayer, path.join(blobsDir, layerHex));
    layers.push({ digest: `sha256:${layerHex}`, size: gzHash.bytes, diffId: `sha256:${tarHash.hash.digest('hex')}` });
  }
  const layer = layers[0]!;
  const diffId = layer.diffId;

  const created = '2024-01-01T00:00:00Z';
  const config = await writeBlob(
    blobsDir,
    Buffer.from(
      JSON.stringify({
        created,
        architecture: dockerArch(),
        os: 'linux',
        config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Labels: { 'registry-gate.seed': String(seed) } },
        rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
        history: layers.map(() => ({ created, created_by: 'registry-gate test harness' })),
      }),
    ),
  );
  const manifest = await writeBlob(
    blobsDir,
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: OCI_CONFIG, digest: config.digest, size: config.size },
        layers: layers.map((l) => ({ mediaType: OCI_LAYER_GZIP, digest: l.digest, size: l.size })),
      }),
    ),
  );
  await writeFile(path.join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(
    path.join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        {
          mediaType: OCI_MANIFEST,
          digest: manifest.digest,
          size: manifest.size,
          annotations: { 'org.opencontainers.image.ref.name': tag },
        },
      ],
    }),
  );

  return {
    layoutDir: dir,
    ociRef: `oci:${dir}:${tag}`,
    tag,
    seed,
    manifestDigest: manifest.digest,
    manifestSize: manifest.size,
    configDigest: config.digest,
    layerDigest: layer.digest,
    layerDigests: layers.map((l) => l.digest),
    layerSize: layer.size,
    diffId,
  };
}

/**
 * Converts the image into a `docker load`-able tarball. `reference` is the name:tag the loaded
 * image gets (default "registry-gate/test:latest"). Returns that reference.
 */
export async function toDockerArchive(image: OciImage, tarPath: string, reference = 'registry-gate/test:latest'): Promise<string> {
  await skopeo(['copy', '--quiet', image.ociRef, `docker-archive:${tarPath}:${reference}`], { check: true });
  return reference;
}
