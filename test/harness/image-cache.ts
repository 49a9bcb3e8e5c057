/**
 * Large test images take seconds to make (a 256 MiB random layer: ~14 s; the container tests'
 * base and image: minutes), so they are kept on the machine between runs under /var/tmp, keyed
 * by what they were made from. A fresh machine makes them once; a half-written entry is never
 * used (built aside, then renamed into place).
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { makeOciImage, type OciImage, type OciImageOptions } from './oci-image.js';

export const CACHE_DIR = process.env.REGGATE_TEST_CACHE ?? '/var/tmp/registry-gate-test-cache';

/** The cached file or directory `name`, made by `make` (into the path it is given) when missing. */
export async function cachedEntry(name: string, make: (building: string) => Promise<void>): Promise<string> {
  const entry = path.join(CACHE_DIR, name);
  if (existsSync(entry)) return entry;
  await mkdir(CACHE_DIR, { recursive: true });
  const building = `${entry}.building-${process.pid}`;
  await rm(building, { recursive: true, force: true });
  try {
    await make(building);
    await rename(building, entry);
  } finally {
    await rm(building, { recursive: true, force: true });
  }
  return entry;
}

const META = 'registry-gate-image.json';

export async function cachedOciImage(opts: Required<Pick<OciImageOptions, 'seed' | 'layerBytes'>> & OciImageOptions): Promise<OciImage> {
  const name = `oci-s${opts.seed}-b${opts.layerBytes}-l${opts.layers ?? 1}-${opts.tag ?? 'latest'}`;
  const placedAt = path.join(CACHE_DIR, name);
  const dir = await cachedEntry(name, async (building) => {
    const image = await makeOciImage(building, opts);
    const placed: OciImage = { ...image, layoutDir: placedAt, ociRef: `oci:${placedAt}:${image.tag}` };
    await writeFile(path.join(building, META), JSON.stringify(placed));
  });
  return JSON.parse(await readFile(path.join(dir, META), 'utf8')) as OciImage;
}
