import path from 'node:path';
import { readFile } from 'node:fs/promises';
import type { AuthConfig } from '../../src/config/types.js';
import { startRegistry, type Registry } from './registry.js';
import { addLoopbackName, type LoopbackName } from './hosts.js';
import { freePort } from './ports.js';
import { makeTempDir, removeTempDir } from './tmp.js';
import { writeHtpasswd } from './htpasswd.js';
import { disposeProxyConfig, proxyConfig, startProxy, type DeepPartial, type ProxyConfigFile, type RunningProxy } from './proxy.js';
import { makeCertDir } from './skopeo.js';

/** The real registry behind the proxy over TLS, as clients see it: a name, a CA to trust, users. */
export interface TlsStack {
  registry: Registry;
  proxy: RunningProxy;
  config: ProxyConfigFile;
  /** "<test name>:<port>": what docker and skopeo address, resolving to ::1. */
  host: string;
  /** https://<host> */
  url: string;
  /** The proxy's self-signed certificate, which clients trust as a CA. */
  caPem: string;
  /** A directory with ca.crt, for skopeo's --cert-dir. */
  certDir: string;
  htpasswdFile: string;
  stop(): Promise<void>;
}

export async function startTlsStack(opts: {
  auth: DeepPartial<AuthConfig>;
  users: Record<string, string>;
  registry?: Registry;
  extra?: DeepPartial<ProxyConfigFile>;
  /** `auth.sources`, given the htpasswd file the stack writes (default: that file alone). */
  sources?: (htpasswdFile: string) => AuthConfig['sources'];
  /** bcrypt cost of the htpasswd entries (default 5, for speed). */
  cost?: number;
  /**
   * A name made with addLoopbackName() before dockerd started: Go's resolver caches /etc/hosts
   * for a few seconds, so a name added after dockerd's first lookup is not seen at once.
   */
  hostsEntry?: LoopbackName;
}): Promise<TlsStack> {
  const registry = opts.registry ?? (await startRegistry());
  const hostsEntry = opts.hostsEntry ?? (await addLoopbackName());
  const work = await makeTempDir('stack');
  const htpasswdFile = path.join(work, 'htpasswd');
  await writeHtpasswd(htpasswdFile, opts.users, opts.cost);
  const port = await freePort('::1');
  const config = await proxyConfig({
    ...opts.extra,
    upstream: registry.url,
    listen: `[::1]:${port}`,
    tls: { mode: 'self-signed', names: [hostsEntry.name] },
    auth: { ...opts.auth, htpasswdFile, ...(opts.sources ? { sources: opts.sources(htpasswdFile) } : {}) },
  });
  const proxy = await startProxy(config);
  const caPem = await readFile(path.join(config.stateDir, 'tls', 'self-signed-cert.pem'), 'utf8');
  const certDir = await makeCertDir(caPem);
  const host = `${hostsEntry.name}:${port}`;
  return {
    registry,
    proxy,
    config,
    host,
    url: `https://${host}`,
    caPem,
    certDir,
    htpasswdFile,
    async stop() {
      await proxy.stop();
      if (!opts.registry) await registry.stop();
      if (!opts.hostsEntry) await hostsEntry.remove();
      await disposeProxyConfig(config);
      await removeTempDir(work);
      await removeTempDir(certDir);
    },
  };
}

/** The real registry behind the proxy over plain HTTP on 127.0.0.1, with htpasswd users when given. */
export interface PlainStack {
  registry: Registry;
  proxy: RunningProxy;
  config: ProxyConfigFile;
  htpasswdFile: string | null;
  stop(): Promise<void>;
}

export async function startPlainStack(opts: { users?: Record<string, string>; config?: DeepPartial<ProxyConfigFile> } = {}): Promise<PlainStack> {
  const work = await makeTempDir('plain-stack');
  const htpasswdFile = opts.users ? path.join(work, 'htpasswd') : null;
  const [registry] = await Promise.all([startRegistry(), htpasswdFile && writeHtpasswd(htpasswdFile, opts.users!)]);
  const overrides = opts.config ?? {};
  const config = await proxyConfig({ ...overrides, upstream: registry.url, ...(htpasswdFile ? { auth: { mode: 'private', ...overrides.auth, htpasswdFile } } : {}) });
  const proxy = await startProxy(config);
  return {
    registry,
    proxy,
    config,
    htpasswdFile,
    async stop() {
      await proxy.stop();
      await registry.stop();
      await disposeProxyConfig(config);
      await removeTempDir(work);
    },
  };
}
