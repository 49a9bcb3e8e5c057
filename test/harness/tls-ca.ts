import { readFile, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import path from 'node:path';
import { run } from './process.js';
import { makeTempDir, removeTempDir } from './tmp.js';

export interface TestCa {
  dir: string;
  certFile: string;
  keyFile: string;
  /** PEM of the CA certificate: what clients trust (skopeo cert dir, docker certs.d, Node `ca`). */
  certPem: string;
  dispose(): Promise<void>;
}

export interface IssuedCert {
  certFile: string;
  keyFile: string;
  certPem: string;
  keyPem: string;
  /** Leaf followed by the CA certificate, as servers should present it. */
  chainPem: string;
}

const openssl = (args: string[], cwd: string): Promise<unknown> => run('openssl', args, { cwd, check: true, timeoutMs: 30_000 });

/**
 * A throwaway CA made with the openssl CLI (P-256 keys: fast to generate). Tests get a chain that
 * real clients (docker, skopeo, Node) verify, instead of turning verification off.
 */
export async function makeTestCa(name = 'registry-gate test CA'): Promise<TestCa> {
  const dir = await makeTempDir('ca');
  await openssl(
    [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
      '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '7', '-subj', `/CN=${name}`,
      '-addext', 'basicConstraints=critical,CA:TRUE',
      '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
  const certFile = path.join(dir, 'ca.crt');
  return {
    dir,
    certFile,
    keyFile: path.join(dir, 'ca.key'),
    certPem: await readFile(certFile, 'utf8'),
    dispose: () => removeTempDir(dir),
  };
}

let serial = 0;

/** A server certificate for `names` (DNS names and/or IP addresses) signed by `ca`, written into the CA's dir. */
export async function issueCert(ca: TestCa, names: string[], opts: { days?: number } = {}): Promise<IssuedCert> {
  if (names.length === 0) throw new Error('issueCert: no names');
  const base = `leaf-${process.pid}-${++serial}`;
  const san = names.map((n) => (isIP(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
  await writeFile(
    path.join(ca.dir, `${base}.ext`),
    [`subjectAltName=${san}`, 'basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=serverAuth', ''].join('\n'),
  );
  await openssl(
    ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', `/CN=${names[0]}`],
    ca.dir,
  );
  await openssl(
    [
      'x509', '-req', '-in', `${base}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial',
      '-days', String(opts.days ?? 7), '-extfile', `${base}.ext`, '-out', `${base}.crt`,
    ],
    ca.dir,
  );
  const certFile = path.join(ca.dir, `${base}.crt`);
  const keyFile = path.join(ca.dir, `${base}.key`);
  const certPem = await readFile(certFile, 'utf8');
  return { certFile, keyFile, certPem, keyPem: await readFile(keyFile, 'utf8'), chainPem: certPem + ca.certPem };
}
