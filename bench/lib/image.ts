import { createHash, randomBytes } from 'node:crypto';
import { request } from '../../test/harness/registry-client.js';

export const MANIFEST_V2 = 'application/vnd.docker.distribution.manifest.v2+json';

/**
 * A config blob, a 2 KiB layer and a schema-2 manifest tagged "latest": what the request load
 * reads. Plus an empty blob for the HEAD load: wrk 4.1 waits for a body after a HEAD answer with
 * a Content-Length above 0, and the registry's work for a HEAD does not depend on the size.
 */
export async function pushSmallImage(registryUrl: string, repo: string): Promise<{ headDigest: string }> {
  const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
  const putBlob = async (data: Buffer): Promise<string> => {
    const digest = sha(data);
    const started = await request(`${registryUrl}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
    const location = new URL(String(started.headers.location), registryUrl);
    location.searchParams.set('digest', digest);
    const res = await request(location.href, { method: 'PUT', body: data });
    if (res.status !== 201) throw new Error(`blob PUT answered ${res.status}: ${res.body.toString()}`);
    return digest;
  };
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
  const layer = randomBytes(2048);
  const configDigest = await putBlob(config);
  const layerDigest = await putBlob(layer);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MANIFEST_V2,
      config: { mediaType: 'application/vnd.docker.container.image.v1+json', size: config.length, digest: configDigest },
      layers: [{ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', size: layer.length, digest: layerDigest }],
    }),
  );
  const res = await request(`${registryUrl}/v2/${repo}/manifests/latest`, { method: 'PUT', body: manifest, headers: { 'content-type': MANIFEST_V2 } });
  if (res.status !== 201) throw new Error(`manifest PUT answered ${res.status}: ${res.body.toString()}`);
  return { headDigest: await putBlob(Buffer.alloc(0)) };
}

