import type http from 'node:http';
import tls from 'node:tls';
import type { Logger } from '../../observe/logger.js';
import type { CertificatePair } from '../certificate.js';
import type { ChallengeShare } from './fleet.js';

const HTTP01_PREFIX = '/.well-known/acme-challenge/';
/** RFC 8555 tokens are base64url; anything else is not looked up in Redis. */
const TOKEN = /^[A-Za-z0-9_-]{1,256}$/;
const DNS_NAME = /^[A-Za-z0-9.-]{1,253}$/;
export const ACME_TLS_ALPN = 'acme-tls/1';

/**
 * Pending HTTP-01 answers (RFC 8555 §8.3), served by the plain-HTTP listener; with a fleet's
 * share, also the answers of the replica that placed the order.
 */
export class Http01Responder {
  private readonly answers = new Map<string, string>();

  constructor(
    private readonly logger: Logger,
    private readonly share: ChallengeShare | null = null,
  ) {}

  async set(token: string, keyAuthorization: string): Promise<void> {
    this.answers.set(token, keyAuthorization);
    await this.share?.publish('http-01', token, keyAuthorization);
  }

  delete(token: string): void {
    this.answers.delete(token);
    void this.share?.withdraw('http-01', token);
  }

  /** Answers every request under the challenge prefix (unknown tokens get 404); false for anything else. */
  answer(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    const pathname = new URL(req.url ?? '/', 'http://placeholder').pathname;
    if (!pathname.startsWith(HTTP01_PREFIX)) return false;
    const token = pathname.slice(HTTP01_PREFIX.length);
    const local = this.answers.get(token);
    const found = local !== undefined ? Promise.resolve(local) : this.share && TOKEN.test(token) ? this.share.lookup('http-01', token) : Promise.resolve(null);
    void found.then((keyAuthorization) => {
      // Debug-level proof that the CA reached us, the first thing to check when validation fails.
      this.logger.debug(
        { token, known: keyAuthorization !== null, byThisReplica: local !== undefined, from: req.socket.remoteAddress },
        'acme: HTTP-01 request',
      );
      res.statusCode = keyAuthorization === null ? 404 : 200;
      res.setHeader('Content-Type', 'text/plain');
      res.end(req.method === 'HEAD' ? undefined : (keyAuthorization ?? 'no such ACME challenge\n'));
    });
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

  constructor(
    logger: Logger,
    private readonly share: ChallengeShare | null = null,
  ) {
    this.server = tls.createServer(
      {
        ALPNProtocols: [ACME_TLS_ALPN],
        SNICallback: (name, callback) => {
          const context = this.contexts.get(name.toLowerCase());
          if (context) return callback(null, context);
          const missing = () => callback(new Error(`no pending TLS-ALPN-01 challenge for ${name}`));
          if (!this.share || !DNS_NAME.test(name)) return missing();
          void this.share.lookup('tls-alpn-01', name).then((text) => {
            try {
              const pair = text === null ? null : (JSON.parse(text) as CertificatePair);
              if (!pair) return missing();
              callback(null, tls.createSecureContext({ cert: pair.certPem, key: pair.keyPem }));
            } catch {
              missing();
            }
          });
        },
      },
      (socket) => {
        logger.debug({ servername: socket.servername, from: socket.remoteAddress }, 'acme: answered a TLS-ALPN-01 validation');
        socket.end();
      },
    );
  }

  async set(domain: string, pair: CertificatePair): Promise<void> {
    this.contexts.set(domain.toLowerCase(), tls.createSecureContext({ cert: pair.certPem, key: pair.keyPem }));
    await this.share?.publish('tls-alpn-01', domain, JSON.stringify(pair));
  }

  delete(domain: string): void {
    this.contexts.delete(domain.toLowerCase());
    void this.share?.withdraw('tls-alpn-01', domain);
  }
}
