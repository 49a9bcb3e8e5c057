/**
 * The other real clients, each with its own storage and an empty credential store so that what a
 * test passes is all they know: podman and buildah (containers/image, vfs storage under /tmp),
 * and containerd's `ctr` against the containerd that a test's dockerd manages.
 */
import path from 'node:path';
import { writeFile } from 'node:fs/promises';
import type { Dockerd } from './dockerd.js';
import { toDockerArchive, type OciImage } from './oci-image.js';
import { run, type RunResult } from './process.js';
import { skopeo } from './skopeo.js';
import { unmountUnderSync } from './cleanup.js';
import { makeTempDir, removeTempDir } from './tmp.js';

export interface PushOptions {
  /** Omitted: anonymous. */
  creds?: { user: string; pass: string };
  /** Directory with ca.crt (podman, buildah) — for ctr, the CA file inside it is used. */
  certDir: string;
  /** A client that hangs fails the test; it is never just slow. */
  timeoutMs?: number;
}

export interface ImageTool {
  name: string;
  /** `<tool> login`, the password on stdin; podman and buildah only (ctr has no login). */
  login?(host: string, creds: { user: string; pass: string }, certDir: string): Promise<RunResult>;
  /** Takes the OCI image into the tool's own store (once per image), then pushes it to `dest` (host/repo:tag). */
  push(image: OciImage, dest: string, opts: PushOptions): Promise<RunResult>;
  stop(): Promise<void>;
}

/** podman or buildah: the same storage flags, the same push flags. */
export async function startContainersTool(name: 'podman' | 'buildah'): Promise<ImageTool> {
  const root = await makeTempDir(name, '/tmp');
  const authFile = path.join(root, 'auth.json');
  await writeFile(authFile, '{"auths":{}}\n', { mode: 0o600 });
  const global = ['--root', path.join(root, 'storage'), '--runroot', path.join(root, 'run'), '--storage-driver', 'vfs'];
  const env = { REGISTRY_AUTH_FILE: authFile, XDG_RUNTIME_DIR: path.join(root, 'xdg') };
  const loaded = new Map<string, string>();
  const tool = (args: string[], timeoutMs = 120_000, redact: string[] = [], stdin?: string) => run(name, [...global, ...args], { env, timeoutMs, redact, stdin });

  // `pull oci:<dir>` would name the image after the (mixed-case) temp path, which is refused.
  const refOf = async (image: OciImage): Promise<string> => {
    const known = loaded.get(image.layoutDir);
    if (known) return known;
    const ref = `localhost/image-${loaded.size}:${image.tag}`;
    const archive = path.join(root, `image-${loaded.size}.tar`);
    await toDockerArchive(image, archive, ref);
    const pulled = await tool(['pull', '--quiet', `docker-archive:${archive}`]);
    if (pulled.code !== 0) throw new Error(`${name} pull ${archive} failed: ${pulled.stderr}`);
    loaded.set(image.layoutDir, ref);
    return ref;
  };

  return {
    name,
    login: (host, creds, certDir) => tool(['login', '--cert-dir', certDir, '--username', creds.user, '--password-stdin', host], 30_000, [], creds.pass),
    async push(image, dest, opts) {
      const id = await refOf(image);
      const creds = opts.creds ? ['--creds', `${opts.creds.user}:${opts.creds.pass}`] : [];
      return tool(['push', '--cert-dir', opts.certDir, ...creds, id, `docker://${dest}`], opts.timeoutMs ?? 60_000, opts.creds ? [opts.creds.pass] : []);
    },
    async stop() {
      unmountUnderSync(root);
      await removeTempDir(root);
    },
  };
}

/** containerd's own client: the resolver that BuildKit, nerdctl and docker's containerd store use. */
export async function startCtr(dockerd: Dockerd): Promise<ImageTool> {
  const work = await makeTempDir('ctr');
  const namespace = `rg${process.pid}`;
  const ctr = (args: string[], timeoutMs = 120_000, redact: string[] = []) => run('ctr', ['-a', dockerd.containerdSocket, '-n', namespace, ...args], { timeoutMs, redact });
  const loaded = new Map<string, string>();

  const refOf = async (image: OciImage): Promise<string> => {
    const known = loaded.get(image.layoutDir);
    if (known) return known;
    const ref = `import.local/image-${loaded.size}:${image.tag}`;
    const archive = path.join(work, `image-${loaded.size}.tar`);
    await skopeo(['copy', '--quiet', image.ociRef, `oci-archive:${archive}:${ref}`], { check: true });
    const imported = await ctr(['images', 'import', '--no-unpack', '--index-name', ref, archive]);
    if (imported.code !== 0) throw new Error(`ctr import failed: ${imported.stderr}`);
    loaded.set(image.layoutDir, ref);
    return ref;
  };

  return {
    name: 'ctr',
    async push(image, dest, opts) {
      const source = await refOf(image);
      await ctr(['images', 'tag', '--force', source, dest]);
      const user = opts.creds ? ['--user', `${opts.creds.user}:${opts.creds.pass}`] : [];
      return ctr(['images', 'push', '--tlscacert', path.join(opts.certDir, 'ca.crt'), ...user, dest], opts.timeoutMs ?? 60_000, opts.creds ? [opts.creds.pass] : []);
    },
    async stop() {
      const images = await ctr(['images', 'list', '--quiet']);
      const refs = images.stdout.split('\n').filter(Boolean);
      if (refs.length) await ctr(['images', 'remove', ...refs]);
      await removeTempDir(work);
    },
  };
}
