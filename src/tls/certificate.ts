import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { isIPv6 } from 'node:net';
import tls from 'node:tls';

/** A PEM certificate chain (leaf first) and its private key. */
export interface CertificatePair {
  certPem: string;
  keyPem: string;
}

export interface CertificateInfo {
  serial: string;
  notBefore: Date;
  notAfter: Date;
  /** DNS names and IP addresses from the subjectAltName extension, lower-cased. */
  names: string[];
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

export function inspectCertificate(certPem: string): CertificateInfo {
  const leaf = leafOf(certPem);
  return {
    serial: leaf.serialNumber.toLowerCase(),
    notBefore: new Date(leaf.validFrom),
    notAfter: new Date(leaf.validTo),
    names: subjectAltNames(leaf),
  };
}

/** Says which half of a pair is at fault, so that callers can name the right file. */
export class PairError extends Error {
  constructor(
    readonly part: 'certificate' | 'key' | 'pair',
    message: string,
  ) {
    super(message);
  }
}

/**
 * Everything that would make the pair unusable for serving, as one human sentence: unparsable
 * PEM, a key that does not belong to the leaf, or anything OpenSSL refuses when it builds the
 * context. Throws a PairError; returns the leaf's details otherwise.
 */
export function inspectPair(pair: CertificatePair): CertificateInfo {
  let leaf: X509Certificate;
  try {
    leaf = leafOf(pair.certPem);
  } catch (err) {
    throw new PairError('certificate', (err as Error).message);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(pair.keyPem);
  } catch (err) {
    throw new PairError('key', `cannot parse the private key: ${(err as Error).message}`);
  }
  if (!leaf.checkPrivateKey(key)) throw new PairError('pair', 'the private key does not match the certificate');
  try {
    tls.createSecureContext({ cert: pair.certPem, key: pair.keyPem });
  } catch (err) {
    throw new PairError('pair', `OpenSSL rejects the certificate/key: ${(err as Error).message}`);
  }
  return inspectCertificate(pair.certPem);
}

/** True when every one of `names` (e.g. the configured domains) is among the certificate's SANs. */
export function coversNames(info: CertificateInfo, names: string[]): boolean {
  return names.every((name) => info.names.includes(normalizeName(name)));
}

/** Lower-case DNS names; IPv6 in the compressed form, since certificates and configs spell it differently. */
export function normalizeName(name: string): string {
  if (isIPv6(name)) return new URL(`http://[${name}]/`).hostname.slice(1, -1);
  return name.toLowerCase();
}

function leafOf(certPem: string): X509Certificate {
  const [first] = certPem.match(PEM_CERTIFICATE) ?? [];
  if (!first) throw new Error('no PEM certificate found');
  try {
    return new X509Certificate(first);
  } catch (err) {
    throw new Error(`cannot parse the certificate: ${(err as Error).message}`);
  }
}

function subjectAltNames(cert: X509Certificate): string[] {
  // Node renders the extension as "DNS:a.example, IP Address:127.0.0.1, ..."; quoted forms only
  // appear for exotic characters, which valid host names do not contain.
  return (cert.subjectAltName ?? '')
    .split(', ')
    .map((entry) => /^(?:DNS|IP Address):(.+)$/.exec(entry)?.[1])
    .filter((name): name is string => name !== undefined)
    .map(normalizeName);
}
