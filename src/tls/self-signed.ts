import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import forge from 'node-forge';
import { normalizeName, type CertificatePair } from './certificate.js';

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * A self-signed certificate that clients use as their trust anchor (docker's
 * certs.d/<host:port>/ca.crt, a CA bundle). It is marked as a CA (basicConstraints CA:true,
 * keyCertSign) so that it is a proper root to every verifier instead of relying on each one's
 * leniency toward a trusted leaf; serverAuth and the SANs make it a server certificate at the
 * same time. Node, OpenSSL and skopeo (Go) accept it: test/e2e/tls-self-signed.test.ts.
 *
 * The key is RSA-2048 from Node's crypto (native, ~0.1 s): node-forge can only sign X.509 with
 * RSA, and its own RSA key generation is far slower.
 */
export function createSelfSigned(requestedNames: string[], validityDays: number, now = new Date()): CertificatePair {
  const names = requestedNames.map(normalizeName);
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString());
  cert.serialNumber = randomSerial();
  // Backdated an hour so that a client whose clock is slightly behind still accepts it.
  cert.validity.notBefore = new Date(now.getTime() - 60 * 60 * 1000);
  cert.validity.notAfter = new Date(now.getTime() + validityDays * DAY_MS);
  // A distinct subject per certificate: clients that trust an old and a new one side by side find
  // the issuer by subject name, and with equal names OpenSSL picks the wrong one and fails.
  // Only PrintableString characters (no "#", "_", "@"): Go refuses to parse anything else.
  const subject = [
    { name: 'commonName', value: names[0] ?? 'registry-gate' },
    { name: 'organizationName', value: 'registry-gate self-signed' },
    { name: 'organizationalUnitName', value: `created ${now.toISOString()} serial ${cert.serialNumber.slice(0, 8)}` },
  ];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, keyCertSign: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: names.map(altName) },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: true },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(keyPem), forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem };
}

function altName(name: string): { type: number; value?: string; ip?: string } {
  // GeneralName tags from RFC 5280: 2 = dNSName, 7 = iPAddress.
  return isIP(name) ? { type: 7, ip: name } : { type: 2, value: name };
}

/** 16 random bytes with the top bit clear: a positive DER INTEGER, as RFC 5280 requires. */
function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f;
  return bytes.toString('hex');
}
