/**
 * Debian's slapd as a throw-away directory on loopback: its own config (slapd.conf, back_mdb), a
 * test CA's certificate for ldaps:// and StartTLS, people under ou=people, groups (groupOfNames)
 * under ou=groups — nested: a group can be a member of another — and a service account that may
 * search. Passwords are stored as given (slapd compares them on bind).
 */
import { writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { freePort } from './ports.js';
import { run, spawnLong, waitUntil, type LongProcess } from './process.js';
import { issueCert, makeTestCa, type TestCa } from './tls-ca.js';
import { makeTempDir, removeTempDir } from './tmp.js';
import net from 'node:net';
import type { LdapConfig } from '../../src/auth/sources/ldap.js';

export const LDAP_SUFFIX = 'dc=example,dc=org';
export const SERVICE_DN = `cn=registry,ou=services,${LDAP_SUFFIX}`;

export interface DirectoryContent {
  /** uid → password (and optional display name). */
  people: Record<string, string>;
  /** cn → members: a uid, or "group:<cn>" for a nested group. */
  groups: Record<string, string[]>;
}

export interface Slapd {
  /** ldaps://127.0.0.1:<port> */
  ldapsUrl: string;
  /** ldap://127.0.0.1:<port>, for StartTLS */
  ldapUrl: string;
  ca: TestCa;
  caFile: string;
  servicePasswordFile: string;
  /** Binds slapd logged since start (stats log), of one DN or of all: how often the directory was asked. */
  binds(dn?: string): number;
  /** Connections accepted since start (all launches). */
  connections(): number;
  kill(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

const SERVICE_PASSWORD = 'service-account-password';

function ldif(content: DirectoryContent): string {
  const entries = [
    `dn: ${LDAP_SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example`,
    ...['people', 'groups', 'services'].map((ou) => `dn: ou=${ou},${LDAP_SUFFIX}\nobjectClass: organizationalUnit\nou: ${ou}`),
    `dn: ${SERVICE_DN}\nobjectClass: simpleSecurityObject\nobjectClass: organizationalRole\ncn: registry\nuserPassword: ${SERVICE_PASSWORD}`,
    ...Object.entries(content.people).map(
      ([uid, password]) => `dn: uid=${uid},ou=people,${LDAP_SUFFIX}\nobjectClass: inetOrgPerson\nuid: ${uid}\ncn: ${uid}\nsn: ${uid}\nuserPassword: ${password}`,
    ),
    ...Object.entries(content.groups).map(([cn, members]) => {
      const dns = members.map((m) => (m.startsWith('group:') ? `cn=${m.slice(6)},ou=groups,${LDAP_SUFFIX}` : `uid=${m},ou=people,${LDAP_SUFFIX}`));
      return `dn: cn=${cn},ou=groups,${LDAP_SUFFIX}\nobjectClass: groupOfNames\ncn: ${cn}\n${dns.map((dn) => `member: ${dn}`).join('\n')}`;
    }),
  ];
  return `${entries.join('\n\n')}\n`;
}

export async function startSlapd(content: DirectoryContent): Promise<Slapd> {
  const dir = await makeTempDir('slapd');
  const ca = await makeTestCa('slapd test CA');
  const cert = await issueCert(ca, ['127.0.0.1', 'localhost']);
  const [ldapPort, ldapsPort] = [await freePort(), await freePort()];
  await mkdir(path.join(dir, 'db'));
  const conf = path.join(dir, 'slapd.conf');
  await writeFile(
    conf,
    [
      ...['core', 'cosine', 'nis', 'inetorgperson'].map((s) => `include /etc/ldap/schema/${s}.schema`),
      'modulepath /usr/lib/ldap',
      'moduleload back_mdb',
      `pidfile ${path.join(dir, 'slapd.pid')}`,
      `TLSCACertificateFile ${ca.certFile}`,
      `TLSCertificateFile ${cert.certFile}`,
      `TLSCertificateKeyFile ${cert.keyFile}`,
      'loglevel stats',
      'database mdb',
      `suffix "${LDAP_SUFFIX}"`,
      `rootdn "cn=admin,${LDAP_SUFFIX}"`,
      'rootpw admin-password',
      `directory ${path.join(dir, 'db')}`,
      'access to attrs=userPassword by anonymous auth by self read by * none',
      `access to * by dn.exact="${SERVICE_DN}" read by self read by * none`,
      '',
    ].join('\n'),
  );
  await writeFile(path.join(dir, 'data.ldif'), ldif(content));
  await run('slapadd', ['-f', conf, '-l', path.join(dir, 'data.ldif')], { check: true, timeoutMs: 60_000 });
  const servicePasswordFile = path.join(dir, 'service-password');
  await writeFile(servicePasswordFile, `${SERVICE_PASSWORD}\n`);
  const caFile = ca.certFile;
  const binds = new Map<string, number>();
  let accepted = 0;
  const launch = async (): Promise<LongProcess> => {
    // -d stats: in the foreground, the stats log on stderr, where each bind is counted.
    const proc = spawnLong('slapd', ['-f', conf, '-h', `ldap://127.0.0.1:${ldapPort}/ ldaps://127.0.0.1:${ldapsPort}/`, '-d', 'stats'], {
      name: 'slapd',
      onStderrLine: (line) => {
        if (/ ACCEPT from /.test(line)) accepted++;
        const dn = / BIND dn="([^"]*)"/.exec(line)?.[1];
        if (dn !== undefined) binds.set(dn.toLowerCase(), (binds.get(dn.toLowerCase()) ?? 0) + 1);
      },
    });
    await waitUntil(() => canConnect(ldapsPort), { timeoutMs: 15_000, what: 'slapd to listen', proc });
    return proc;
  };
  let proc = await launch();
  return {
    ldapsUrl: `ldaps://127.0.0.1:${ldapsPort}`,
    ldapUrl: `ldap://127.0.0.1:${ldapPort}`,
    ca,
    caFile,
    servicePasswordFile,
    connections: () => accepted,
    binds: (dn) => (dn === undefined ? [...binds.values()].reduce((a, b) => a + b, 0) : (binds.get(dn.toLowerCase()) ?? 0)),
    async kill() {
      await proc.stop({ signal: 'SIGKILL' });
    },
    async start() {
      proc = await launch();
    },
    async stop() {
      await proc.stop({ graceMs: 2000 });
      await ca.dispose();
      await removeTempDir(dir);
    },
  };
}

/** An `auth.sources` entry for this directory over ldaps://: the service account, people and groups. */
export function directorySource(slapd: Slapd, over: Partial<LdapConfig> = {}): LdapConfig {
  return {
    type: 'ldap',
    url: slapd.ldapsUrl,
    caFile: slapd.caFile,
    bindDn: SERVICE_DN,
    bindPasswordFile: slapd.servicePasswordFile,
    userBase: `ou=people,${LDAP_SUFFIX}`,
    groupBase: `ou=groups,${LDAP_SUFFIX}`,
    timeoutSeconds: 2,
    ...over,
  };
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
