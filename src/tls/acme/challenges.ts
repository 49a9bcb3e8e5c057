import type http from 'node:http';
import tls from 'node:tls';
import type { Logger } from '../../observe/logger.js';
import type { CertificatePair } from '../certificate.js';

const HTTP01_PREFIX = '/.well-known/acme-challenge/';
export const ACME_TLS_ALPN = 'acme-tls/1';

/** Pending HTTP-01 answers (RFC 8555 §8.3), served by the plain-HTTP listener. */
export class Http01Responder {
  private readonly answers = new Map<string, string>();

  constructor(private readonly logger: Logger) {}

  set(token: string, keyAuthorization: string): void {
    this.answers.set(token, keyAuthorization);
  }

  delete(token: string): void {
    this.answers.delete(token);
  }

  /** Answers every request under the challenge prefix (unknown tokens get 404); false for anything else. */
  answer(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    const pathname = new URL(req.url ?? '/', 'http://placeholder').pathname;
    if (!pathname.startsWith(HTTP01_PREFIX)) return false;
    const token = pathname.slice(HTTP01_PREFIX.length);
    const keyAuthorization = this.answers.get(token);
    // Debug-level proof that the CA reached us, the first thing to check when validation fails.
    this.logger.debug({ token, known: keyAuthorization !== undefined, from: req.socket.remoteAddress }, 'acme: HTTP-01 request');
    res.statusCode = keyAuthorization === undefined ? 404 : 200;
    res.setHeader('Content-Type', 'text/plain');
    res.end(req.method === 'HEAD' ? undefined : (keyAuthorization ?? 'no such ACME challenge\n'));
    return true;
  }
}

/**
 * Pending TLS-ALPN-01 certificates (RFC 8737), presented by a small TLS server that only ever
 * receives connections whose ClientHello offered `acme-tls/1` (see alpn-router.ts). It never
 * listens itself and closes each connection after the handshake, as the validator expects.
 */
export class TlsAlpn01Responder {
  private readonly contexts = new Map<string, tls.SecureContext>();
  readonly server: tls.Server;

  constructor(logger: Logger) {
    this.server = tls.createServer(
      {
        ALPNProtocols: [ACME_TLS_ALPN],
        SNICallback: (name, callback) => {
          const context = this.contexts.get(name.toLowerCase());
          if (context) callback(null, context);
          else callback(new Error(`no pending TLS-ALPN-01 challenge for ${name}`));
        },
      },
      (socket) => {
        logger.debug({ servername: socket.servername, from: socket.remoteAddress }, 'acme: answered a TLS-ALPN-01 validation');
        socket.end();
      },
    );
  }

  set(domain: string, pair: CertificatePair): void {
    this.contexts.set(domain.toLowerCase(), tls.createSecureContext({ cert: pair.certPem, key: pair.keyPem }));
  }

  delete(domain: string): void {
    this.contexts.delete(domain.toLowerCase());
  }
}
