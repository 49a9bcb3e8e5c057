import { putBlob, pushSmallImage } from '../../test/harness/small-image.js';

export { MANIFEST_V2 } from '../../test/harness/small-image.js';

/**
 * A config blob, a 2 KiB layer and a schema-2 manifest tagged "latest": what the request load
 * reads. Plus an empty blob for the HEAD load: wrk 4.1 waits for a body after a HEAD answer with
 * a Content-Length above 0, and the registry's work for a HEAD does not depend on the size.
 */
export async function pushBenchImage(registryUrl: string, repo: string): Promise<{ headDigest: string }> {
  await pushSmallImage(registryUrl, repo, 'latest', { layerBytes: 2048 });
  return { headDigest: await putBlob(registryUrl, repo, Buffer.alloc(0)) };
}
