import { createHash, randomBytes } from 'node:crypto';
import { request, type ClientAuth } from './registry-client.js';

export const MANIFEST_V2 = 'application/vnd.docker.distribution.manifest.v2+json';

export const sha256Digest = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Monolithic blob upload: POST, then PUT ?digest= with the whole body. */
export async function putBlob(base: string, repo: string, data: Buffer, auth?: ClientAuth): Promise<string> {
  const digest = sha256Digest(data);
  const started = await request(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST', auth });
  if (started.status !== 202) throw new Error(`blob upload start answered ${started.status}: ${started.body.toString()}`);
  const location = new URL(String(started.headers.location), base);
  location.searchParams.set('digest', digest);
  const res = await request(location.href, { method: 'PUT', body: data, auth });
  if (res.status !== 201) throw new Error(`blob PUT answered ${res.status}: ${res.body.toString()}`);
  return digest;
}

type Descriptor = { digest: string; size: number };

/** A Docker schema-2 manifest naming a config blob and layers. */
export function schema2Manifest(config: Descriptor, layers: Descriptor[]): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MANIFEST_V2,
      config: { mediaType: 'application/vnd.docker.container.image.v1+json', ...config },
      layers: layers.map((l) => ({ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', ...l })),
    }),
  );
}

/**
 * A config blob, one random layer and a schema-2 manifest under `tag`. Each call makes a new
 * manifest (the config carries a nonce), so pushing the same tag twice moves it.
 */
export async function pushSmallImage(
  base: string,
  repo: string,
  tag: string,
  opts: { auth?: ClientAuth; layerBytes?: number } = {},
): Promise<{ digest: string; layer: string; layerBytes: number }> {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, nonce: randomBytes(8).toString('hex') }));
  const layerData = randomBytes(opts.layerBytes ?? 512);
  const configDigest = await putBlob(base, repo, config, opts.auth);
  const layer = await putBlob(base, repo, layerData, opts.auth);
  const manifest = schema2Manifest({ digest: configDigest, size: config.length }, [{ digest: layer, size: layerData.length }]);
  const res = await request(`${base}/v2/${repo}/manifests/${tag}`, { method: 'PUT', body: manifest, headers: { 'content-type': MANIFEST_V2 }, auth: opts.auth });
  if (res.status !== 201) throw new Error(`manifest PUT answered ${res.status}: ${res.body.toString()}`);
  return { digest: sha256Digest(manifest), layer, layerBytes: layerData.length };
}
