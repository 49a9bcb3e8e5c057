import { randomBytes } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { run, type RunOptions, type RunResult } from './process.js';
import { makeTempDir } from './tmp.js';

/** `anonymous` maps to --*-no-creds: no credentials at all, not even from the auth file. */
export type SkopeoCreds = { user: string; pass: string } | { bearer: string } | 'anonymous';

let scratchDir: Promise<string> | null = null;

/**
 * One private dir per test process for skopeo's auth file, so credentials the host (or an
 * earlier test) stored in ${XDG_RUNTIME_DIR}/containers/auth.json never leak into a test.
 */
function scratch(): Promise<string> {
  scratchDir ??= (async () => {
    const dir = await makeTempDir('skopeo');
    await writeFile(path.join(dir, 'auth.json'), '{"auths":{}}\n', { mode: 0o600 });
    return dir;
  })();
  return scratchDir;
}

/** Runs skopeo with --insecure-policy (no signature policy in tests) and a private, empty auth file. */
export async function skopeo(args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const dir = await scratch();
  return run('skopeo', ['--insecure-policy', ...args], {
    timeoutMs: 120_000,
    ...opts,
    env: { REGISTRY_AUTH_FILE: path.join(dir, 'auth.json'), ...opts.env },
  });
}

export interface SkopeoCopyOptions {
  srcCreds?: SkopeoCreds;
  destCreds?: SkopeoCreds;
  /** Directory holding ca.crt (see makeCertDir); applied to every docker:// side. */
  certDir?: string;
  srcCertDir?: string;
  destCertDir?: string;
  /** Default: skopeo's own (verify). false is needed for plain-HTTP registries. */
  tlsVerify?: boolean;
  srcTlsVerify?: boolean;
  destTlsVerify?: boolean;
  /** Return the failed result instead of throwing. */
  allowFail?: boolean;
  extraArgs?: string[];
  timeoutMs?: number;
}

export interface SkopeoCopyResult extends RunResult {
  /** Manifest digest written by --digestfile (set when the copy succeeded). */
  digest: string | null;
}

function registryHost(ref: string): string | null {
  if (!ref.startsWith('docker://')) return null;
  return ref.slice('docker://'.length).split('/')[0]!;
}

async function credsArgs(side: 'src' | 'dest', ref: string, creds: SkopeoCreds | undefined, dir: string, files: string[]): Promise<string[]> {
  if (creds === undefined) return [];
  if (creds === 'anonymous') return [`--${side}-no-creds`];
  // A token is short-lived and harmless on argv; a password goes into a private auth file so
  // it never shows in `ps`, in our error messages, or in skopeo's own debug output.
  if ('bearer' in creds) return [`--${side}-registry-token`, creds.bearer];
  const host = registryHost(ref);
  if (!host) throw new Error(`skopeoCopy: ${side}Creds given but ${ref} is not a docker:// reference`);
  const file = path.join(dir, `creds-${randomBytes(6).toString('hex')}.json`);
  const auth = Buffer.from(`${creds.user}:${creds.pass}`).toString('base64');
  await writeFile(file, JSON.stringify({ auths: { [host]: { auth } } }), { mode: 0o600 });
  files.push(file);
  return [`--${side}-authfile`, file];
}

function sideArgs(side: 'src' | 'dest', ref: string, certDir: string | undefined, tlsVerify: boolean | undefined): string[] {
  if (!ref.startsWith('docker://')) return [];
  const out: string[] = [];
  if (certDir !== undefined) out.push(`--${side}-cert-dir`, certDir);
  if (tlsVerify !== undefined) out.push(`--${side}-tls-verify=${tlsVerify}`);
  return out;
}

/** `skopeo copy src dest`; throws with skopeo's stderr on failure unless allowFail. */
export async function skopeoCopy(src: string, dest: string, opts: SkopeoCopyOptions = {}): Promise<SkopeoCopyResult> {
  const dir = await scratch();
  const files: string[] = [];
  try {
    const digestFile = path.join(dir, `digest-${randomBytes(6).toString('hex')}`);
    files.push(digestFile);
    const args = [
      'copy',
      '--quiet',
      ...(await credsArgs('src', src, opts.srcCreds, dir, files)),
      ...(await credsArgs('dest', dest, opts.destCreds, dir, files)),
      ...sideArgs('src', src, opts.srcCertDir ?? opts.certDir, opts.srcTlsVerify ?? opts.tlsVerify),
      ...sideArgs('dest', dest, opts.destCertDir ?? opts.certDir, opts.destTlsVerify ?? opts.tlsVerify),
      ...(dest.startsWith('docker://') ? ['--digestfile', digestFile] : []),
      ...(opts.extraArgs ?? []),
      src,
      dest,
    ];
    const res = await skopeo(args, { check: !opts.allowFail, timeoutMs: opts.timeoutMs });
    let digest: string | null = null;
    if (res.code === 0) digest = (await readFile(digestFile, 'utf8').catch(() => '')).trim() || null;
    return { ...res, digest };
  } finally {
    await Promise.all(files.map((f) => rm(f, { force: true })));
  }
}

/** A directory with `ca.crt`, the layout skopeo's --*-cert-dir (and docker's certs.d) expect. */
export async function makeCertDir(caPem: string | Buffer): Promise<string> {
  const dir = await makeTempDir('certs');
  await writeFile(path.join(dir, 'ca.crt'), caPem);
  return dir;
}
