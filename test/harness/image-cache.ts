/**
 * Large test images take seconds to make (a 256 MiB random layer: ~14 s), so they are kept on the
 * machine between runs under /var/tmp, keyed by what they were made from. A fresh machine makes
 * them once; a half-written entry is never used (built aside, then renamed into place).
 */
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { makeOciImage, type OciImage, type OciImageOptions } from './oci-image.js';

const CACHE_DIR = process.env.REGGATE_TEST_CACHE ?? '/var/tmp/registry-gate-test-cache';

export async function cachedOciImage(opts: Required<Pick<OciImageOptions, 'seed' | 'layerBytes'>> & OciImageOptions): Promise<OciImage> {
  const name = `oci-s${opts.seed}-b${opts.layerBytes}-l${opts.layers ?? 1}-${opts.tag ?? 'latest'}`;
  const dir = path.join(CACHE_DIR, name);
  const meta = path.join(dir, 'registry-gate-image.json');
  const cached = await readFile(meta, 'utf8').then((text) => JSON.parse(text) as OciImage, () => null);
  if (cached) return cached;
  await mkdir(CACHE_DIR, { recursive: true });
  const building = `${dir}.building-${process.pid}`;
  await rm(building, { recursive: true, force: true });
  const image = await makeOciImage(building, opts);
  const placed: OciImage = { ...image, layoutDir: dir, ociRef: `oci:${dir}:${image.tag}` };
  await writeFile(path.join(building, 'registry-gate-image.json'), JSON.stringify(placed));
  await rm(dir, { recursive: true, force: true });
  await rename(building, dir);
  return placed;
}
