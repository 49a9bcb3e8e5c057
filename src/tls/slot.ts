import type tls from 'node:tls';
import type { CertificateInfo, CertificatePair } from './certificate.js';

/** Where the certificate in use came from; "temporary" is the stand-in while ACME has none yet. */
export type CertificateOrigin = 'self-signed' | 'files' | 'acme' | 'temporary';

export interface ActiveCertificate {
  pair: CertificatePair;
  info: CertificateInfo;
  origin: CertificateOrigin;
}

/** Options every secure context gets; setSecureContext replaces the whole context, so they are repeated on each swap. */
export const SERVER_TLS_OPTIONS = { minVersion: 'TLSv1.2' } as const;

/**
 * The one owner of the certificate being served. A swap only affects handshakes that start after
 * it: `setSecureContext` leaves established connections on the context they negotiated with.
 */
export class CertificateSlot {
  private current: ActiveCertificate | null = null;
  private readonly servers = new Set<tls.Server>();

  get(): ActiveCertificate | null {
    return this.current;
  }

  replace(next: ActiveCertificate): void {
    this.current = next;
    for (const server of this.servers) apply(server, next);
  }

  attach(server: tls.Server): void {
    this.servers.add(server);
    if (this.current) apply(server, this.current);
  }
}

function apply(server: tls.Server, active: ActiveCertificate): void {
  server.setSecureContext({ ...SERVER_TLS_OPTIONS, cert: active.pair.certPem, key: active.pair.keyPem });
}
