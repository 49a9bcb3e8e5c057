/**
 * An issuer's signing keys (JWKS), found through its discovery document and kept in memory.
 *
 * - Fetched once at start, again in the background when older than `maxAgeMs`, and at once when a
 *   token names a key id the set lacks (the issuer rotated) — but never more often than once per
 *   `cooldownMs`: a flood of made-up `kid`s is a flood of refusals, not of requests to the issuer.
 * - An issuer that cannot be reached leaves the keys fetched before in use (tokens keep
 *   verifying; /readyz says "degraded"); only with no keys at all is verification unavailable.
 * - Fetched with Node's own HTTPS client so a private issuer's CA (`caFile`) can be trusted;
 *   answers are capped in size and time.
 */
import { request } from 'node:https';
import { createLocalJWKSet, errors, type JSONWebKeySet, type JWTHeaderParameters, type FlattenedJWSInput } from 'jose';
import type { Logger } from '../../observe/logger.js';

const MAX_DOCUMENT_BYTES = 1024 * 1024;

export interface IssuerKeysOptions {
  issuer: string;
  /** Given: discovery is skipped. */
  jwksUrl: string | null;
  /** PEM of the CA that signed the issuer's certificate; null: the system's CAs. */
  ca: string | null;
  logger: Logger;
  /** What messages call it: `oidc source "github"`. */
  label: string;
  timeoutMs?: number;
  cooldownMs?: number;
  maxAgeMs?: number;
  now?: () => number;
}

/** The keys cannot be had: no set was ever fetched and the issuer does not answer. */
export class KeysUnavailable extends Error {}

type KeyResolver = ReturnType<typeof createLocalJWKSet>;

export class IssuerKeys {
  private resolver: KeyResolver | null = null;
  private fetchedAt = 0;
  private lastAttempt = -Infinity;
  private lastError: string | null = null;
  private running: Promise<void> | null = null;
  /** How many times the issuer was asked (tests and the bench read it). */
  fetches = 0;
  private readonly timeoutMs: number;
  private readonly cooldownMs: number;
  private readonly maxAgeMs: number;
  private readonly now: () => number;

  constructor(private readonly options: IssuerKeysOptions) {
    this.timeoutMs = options.timeoutMs ?? 5000;
    this.cooldownMs = options.cooldownMs ?? 10_000;
    this.maxAgeMs = options.maxAgeMs ?? 10 * 60_000;
    this.now = options.now ?? Date.now;
  }

  /** jose's key resolver: the key the token's header names. */
  readonly resolve = async (header: JWTHeaderParameters, token: FlattenedJWSInput): Promise<CryptoKey> => {
    // No keys yet: the first login waits for a fetch; later ones ask again only past the cooldown.
    if (!this.resolver) await this.refresh(this.lastAttempt === -Infinity);
    if (!this.resolver) throw new KeysUnavailable(`${this.options.label}: cannot fetch the issuer's keys (${this.lastError ?? 'not fetched yet'})`);
    if (this.now() - this.fetchedAt > this.maxAgeMs) void this.refresh(false);
    try {
      return (await this.resolver(header, token)) as CryptoKey;
    } catch (err) {
      if (!(err instanceof errors.JWKSNoMatchingKey) || this.now() - this.lastAttempt < this.cooldownMs) throw err;
      await this.refresh(false);
      return (await this.resolver(header, token)) as CryptoKey;
    }
  };

  /** Fetch now (one fetch at a time; callers wait for the one under way). */
  refresh(force: boolean): Promise<void> {
    if (this.running) return this.running;
    if (!force && this.now() - this.lastAttempt < this.cooldownMs) return Promise.resolve();
    this.lastAttempt = this.now();
    this.running = this.fetchKeys()
      .then((jwks) => {
        this.resolver = createLocalJWKSet(jwks);
        this.fetchedAt = this.now();
        if (this.lastError !== null) this.options.logger.info({ source: this.options.label }, `${this.options.label}: the issuer's keys are fetched again`);
        this.lastError = null;
      })
      .catch((err: unknown) => {
        const first = this.lastError === null;
        this.lastError = (err as Error).message;
        if (first) {
          const kept = this.resolver ? 'tokens are verified with the keys fetched before' : 'ID tokens cannot be verified until it answers';
          this.options.logger.warn({ source: this.options.label }, `${this.options.label}: ${this.lastError}; ${kept}`);
        }
      })
      .finally(() => {
        this.running = null;
      });
    return this.running;
  }

  degraded(): string[] {
    if (this.lastError === null) return [];
    const since = this.resolver ? `using keys fetched ${new Date(this.fetchedAt).toISOString()}` : 'no keys: its ID tokens are refused';
    return [`${this.options.label}: issuer unreachable (${this.lastError}); ${since}`];
  }

  private async fetchKeys(): Promise<JSONWebKeySet> {
    this.fetches++;
    let url = this.options.jwksUrl;
    if (url === null) {
      const discovery = `${this.options.issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
      const document = await this.getJson(discovery);
      if (document.issuer !== this.options.issuer) {
        throw new Error(`${discovery} names the issuer ${JSON.stringify(document.issuer)}, not "${this.options.issuer}"; correct "issuer" in the config`);
      }
      if (typeof document.jwks_uri !== 'string' || !document.jwks_uri.startsWith('https://')) throw new Error(`${discovery} has no https jwks_uri`);
      url = document.jwks_uri;
    }
    const jwks = await this.getJson(url);
    if (!Array.isArray(jwks.keys)) throw new Error(`${url} is not a key set (no "keys" list)`);
    return jwks as unknown as JSONWebKeySet;
  }

  private getJson(url: string): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const req = request(url, { method: 'GET', headers: { accept: 'application/json' }, timeout: this.timeoutMs, ...(this.options.ca ? { ca: this.options.ca } : {}) }, (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          reject(new Error(`${url} answered ${res.statusCode}`));
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_DOCUMENT_BYTES) {
            req.destroy(new Error(`${url} sent more than ${MAX_DOCUMENT_BYTES} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () => {
          try {
            const value: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
            if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not a JSON object');
            resolve(value as Record<string, unknown>);
          } catch (err) {
            reject(new Error(`${url}: ${(err as Error).message}`));
          }
        });
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`${url} did not answer within ${this.timeoutMs} ms`)));
      req.on('error', (err) => reject(new Error(err.message.startsWith(url) ? err.message : `${url}: ${err.message}`)));
      req.end();
    });
  }
}
