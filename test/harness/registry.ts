import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { probeStatus } from './http-probe.js';
import { freePort } from './ports.js';
import { spawnLong, waitUntil, type LongProcess } from './process.js';
import { makeTempDir, removeTempDir } from './tmp.js';

export interface RegistryOptions {
  /** Registry log level (default "warn": its info level logs every request). */
  logLevel?: 'error' | 'warn' | 'info' | 'debug';
  /** http.relativeurls: Location headers without scheme and host. */
  relativeUrls?: boolean;
  /** TLS on the registry itself (PEM files), for tests that need a TLS upstream. */
  tls?: { certFile: string; keyFile: string };
  /** Address to bind (default 127.0.0.1); url and host use it too. */
  bindHost?: string;
  startTimeoutMs?: number;
  /** Storage shared with other registry replicas (left in place at stop); default: a directory of its own. */
  dataDir?: string;
  /** http.secret, which signs upload state: replicas sharing uploads need the same one. */
  secret?: string;
}

export interface Registry {
  /** http://<bindHost>:<port> (https when `tls` was given), no trailing slash. */
  url: string;
  port: number;
  /** "<bindHost>:<port>", the form image references use. */
  host: string;
  dataDir: string;
  /** The running registry process (another one after restart()). */
  readonly process: LongProcess;
  /** Stop the registry (SIGTERM) and start it again on the same port and storage. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

function configYaml(port: number, dataDir: string, o: RegistryOptions): string {
  // A fixed http.secret stops the registry warning about a random one; it only signs upload state.
  const lines = [
    'version: 0.1',
    'log:',
    `  level: ${o.logLevel ?? 'warn'}`,
    '  accesslog:',
    `    disabled: ${o.logLevel === 'info' || o.logLevel === 'debug' ? 'false' : 'true'}`,
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${JSON.stringify(dataDir)}`,
    '  delete:',
    '    enabled: true',
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: "${listenHost(o.bindHost ?? '127.0.0.1')}:${port}"`,
    `  secret: ${o.secret ?? randomBytes(16).toString('hex')}`,
    `  relativeurls: ${o.relativeUrls ? 'true' : 'false'}`,
  ];
  if (o.tls) {
    lines.push('  tls:', `    certificate: ${JSON.stringify(o.tls.certFile)}`, `    key: ${JSON.stringify(o.tls.keyFile)}`);
  }
  lines.push('health:', '  storagedriver:', '    enabled: false', '');
  return lines.join('\n');
}

/** The real CNCF distribution registry (`docker-registry serve`) with filesystem storage in a temp dir. */
export async function startRegistry(opts: RegistryOptions = {}): Promise<Registry> {
  const root = await makeTempDir('registry');
  const dataDir = opts.dataDir ?? path.join(root, 'data');
  await mkdir(dataDir, { recursive: true });
  const configFile = path.join(root, 'config.yml');

  // freePort() can race with another process; the registry then dies with "address already in use".
  for (let attempt = 1; ; attempt++) {
    const bind = opts.bindHost ?? '127.0.0.1';
    const port = await freePort(bind);
    const hostPart = bind.includes(':') ? `[${bind}]` : bind;
    await writeFile(configFile, configYaml(port, dataDir, opts));
    const scheme = opts.tls ? 'https' : 'http';
    const url = `${scheme}://${hostPart}:${port}`;
    const launch = (): LongProcess => spawnLong('docker-registry', ['serve', configFile], { name: 'docker-registry' });
    const ready = (started: LongProcess): Promise<void> =>
      waitUntil(async () => (await probeStatus(`${url}/v2/`)) === 200, {
        timeoutMs: opts.startTimeoutMs ?? 15_000,
        what: `GET ${url}/v2/ to answer 200`,
        proc: started,
      });
    let proc = launch();
    try {
      await ready(proc);
    } catch (err) {
      await proc.stop({ graceMs: 2_000 });
      if (attempt < 3 && /address already in use/i.test(proc.stderrTail())) continue;
      await removeTempDir(root);
      throw err;
    }
    return {
      url,
      port,
      host: `${hostPart}:${port}`,
      dataDir,
      get process() {
        return proc;
      },
      async restart() {
        await proc.stop({ graceMs: 5_000 });
        proc = launch();
        await ready(proc);
      },
      async stop() {
        await proc.stop({ graceMs: 5_000 });
        await removeTempDir(root);
      },
    };
  }
}

function listenHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}
