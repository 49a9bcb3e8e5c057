import { randomBytes, webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import type { JsonName } from '@peculiar/x509';
import { normalizeName, type CertificatePair } from './certificate.js';

const DAY_MS = 24 * 60 * 60 * 1000;

/** The key a self-signed certificate is made with (`tls.selfSignedKey`). */
export type SelfSignedKey = 'ecdsa-p256' | 'rsa-2048';

/**
 * ECDSA P-256 by default: a handshake signs with the server's key, and P-256 signs several times
 * faster than RSA-2048 (a crowd of new connections is bound by exactly that). Every client the
 * proxy serves speaks it; RSA stays for the odd old one.
 */
const ALGORITHMS: Record<SelfSignedKey, { key: RsaHashedKeyGenParams | EcKeyGenParams; sign: Algorithm | EcdsaParams; keyEncipherment: boolean }> = {
  'ecdsa-p256': { key: { name: 'ECDSA', namedCurve: 'P-256' }, sign: { name: 'ECDSA', hash: 'SHA-256' } as EcdsaParams, keyEncipherment: false },
  'rsa-2048': {
    key: { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
    sign: { name: 'RSASSA-PKCS1-v1_5' },
    // RSA key exchange (TLS 1.2 without ECDHE) encrypts to the key.
    keyEncipherment: true,
  },
};

/**
 * A self-signed certificate that clients use as their trust anchor (docker's
 * certs.d/<host:port>/ca.crt, a CA bundle). It is marked as a CA (basicConstraints CA:true,
 * keyCertSign) so that it is a proper root to every verifier instead of relying on each one's
 * leniency toward a trusted leaf; serverAuth and the SANs make it a server certificate at the
 * same time. Node, OpenSSL and skopeo (Go) accept it: test/e2e/tls-self-signed.test.ts.
 */
export async function createSelfSigned(requestedNames: string[], validityDays: number, keyType: SelfSignedKey = 'ecdsa-p256', now = new Date()): Promise<CertificatePair> {
  // Loaded when a certificate is made (once per state directory, and in ACME mode anyway):
  // resident memory grows by ~15 MiB for each proxy that loads it.
  const x509 = await import('@peculiar/x509');
  const { KeyUsageFlags } = x509;
  const names = requestedNames.map(normalizeName);
  const algorithm = ALGORITHMS[keyType];
  const usages = KeyUsageFlags.digitalSignature | KeyUsageFlags.keyCertSign | (algorithm.keyEncipherment ? KeyUsageFlags.keyEncipherment : 0);
  const keys = (await webcrypto.subtle.generateKey(algorithm.key, true, ['sign', 'verify'])) as CryptoKeyPair;
  const serialNumber = randomSerial();
  // A distinct subject per certificate: clients that trust an old and a new one side by side find
  // the issuer by subject name, and with equal names OpenSSL picks the wrong one and fails.
  // Only PrintableString characters (no "#", "_", "@"), as Go once insisted on.
  const name: JsonName = [
    { CN: [names[0] ?? 'registry-gate'] },
    { O: ['registry-gate self-signed'] },
    { OU: [`created ${now.toISOString()} serial ${serialNumber.slice(0, 8)}`] },
  ];
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber,
      name,
      // Backdated an hour so that a client whose clock is slightly behind still accepts it.
      notBefore: new Date(now.getTime() - 60 * 60 * 1000),
      notAfter: new Date(now.getTime() + validityDays * DAY_MS),
      signingAlgorithm: algorithm.sign,
      keys,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(usages, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        new x509.SubjectAlternativeNameExtension(names.map((n) => (isIP(n) ? { type: 'ip' as const, value: n } : { type: 'dns' as const, value: n }))),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, webcrypto as Crypto),
        await x509.AuthorityKeyIdentifierExtension.create(keys.publicKey, false, webcrypto as Crypto),
      ],
    },
    webcrypto as Crypto,
  );
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  // With the final newline PEM files have everywhere else: bundles are made by concatenating them.
  return { certPem: `${cert.toString('pem')}\n`, keyPem: `${x509.PemConverter.encode(pkcs8, 'PRIVATE KEY')}\n` };
}

/** 16 random bytes with the top bit clear: a positive DER INTEGER, as RFC 5280 requires. */
function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f;
  return bytes.toString('hex');
}
