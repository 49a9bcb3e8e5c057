/**
 * ACME for several replicas that share a Redis (`redis` set): one order at a time for the whole
 * fleet, challenge answers that every replica can give, and one account and certificate that
 * every replica serves. Traefik OSS cannot share ACME at all; Caddy shares through its storage.
 *
 * - The order lock is a key set with NX and an expiry, extended while its holder works and
 *   released by compare-and-delete, so a replica that dies holding it blocks renewal for at most
 *   ORDER_LOCK_MS.
 * - Challenge answers (HTTP-01 key authorizations, TLS-ALPN-01 certificates) are published for
 *   the order's lifetime: the CA's validation may reach any replica behind the load balancer.
 * - The account key, its URL and the certificate live in Redis; the disk keeps a copy, which is
 *   what a replica starts from when Redis is away. A new certificate is announced on a channel
 *   and every replica swaps it in for new connections.
 * - The account key, the certificate with its key and the challenge answers are sealed
 *   (state/secret-box.ts): one planted in Redis would get an attacker's certificate served, or
 *   make the fleet answer an attacker's order for our names. What does not open is refused.
 */
import { randomBytes } from 'node:crypto';
import { crypto as acmeCrypto } from 'acme-client';
import type { Redis } from 'ioredis';
import type { Logger } from '../../observe/logger.js';
import type { SecretBox } from '../../state/secret-box.js';
import type { CertificatePair } from '../certificate.js';
import type { AcmeStorage, AcmeStore, StoredAccount, StoredCertificate } from './storage.js';

const PREFIX = 'registry-gate:acme:';
const CERTIFICATE_CHANNEL = `${PREFIX}certificate-changed`;
export const ORDER_LOCK_MS = 120_000;
/** Longer than an order can take (acme-client polls for about a minute). */
const CHALLENGE_TTL_SECONDS = 600;

const EXTEND = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";
const RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

export interface OrderLock {
  release(): Promise<void>;
}

/** Challenge answers other replicas published; null when none (or Redis is away). */
export interface ChallengeShare {
  publish(kind: 'http-01' | 'tls-alpn-01', name: string, value: string): Promise<void>;
  lookup(kind: 'http-01' | 'tls-alpn-01', name: string): Promise<string | null>;
  withdraw(kind: 'http-01' | 'tls-alpn-01', name: string): Promise<void>;
}

export class AcmeFleet implements ChallengeShare {
  readonly store: AcmeStore;
  /** Who this replica is, in the lock's value and the announcements. */
  readonly id = randomBytes(8).toString('hex');

  constructor(
    private readonly redis: Redis,
    private readonly subscriber: Redis,
    disk: AcmeStorage,
    private readonly box: SecretBox,
    private readonly logger: Logger,
  ) {
    this.store = new FleetStore(redis, disk, box, logger);
  }

  /** The lock for one order, or null while another replica holds it. Redis errors are thrown: renewal waits. */
  async tryLock(): Promise<OrderLock | null> {
    const key = `${PREFIX}order-lock`;
    const value = `${this.id}:${randomBytes(8).toString('hex')}`;
    if ((await this.redis.set(key, value, 'PX', ORDER_LOCK_MS, 'NX')) !== 'OK') return null;
    const extend = setInterval(() => void this.redis.eval(EXTEND, 1, key, value, String(ORDER_LOCK_MS)).catch(() => {}), ORDER_LOCK_MS / 4);
    extend.unref();
    return {
      release: async () => {
        clearInterval(extend);
        await this.redis.eval(RELEASE, 1, key, value).catch(() => {});
      },
    };
  }

  /** Tells every replica that the shared certificate changed. */
  async announce(): Promise<void> {
    await this.redis.publish(CERTIFICATE_CHANNEL, this.id);
  }

  /** Calls `changed` when another replica announces a certificate. */
  async listen(changed: () => void): Promise<void> {
    this.subscriber.on('message', (channel: string, from: string) => {
      if (channel === CERTIFICATE_CHANNEL && from !== this.id) changed();
    });
    await this.subscriber.subscribe(CERTIFICATE_CHANNEL);
  }

  async publish(kind: 'http-01' | 'tls-alpn-01', name: string, value: string): Promise<void> {
    const key = challengeKey(kind, name);
    await this.redis.set(key, this.box.seal(key, value), 'EX', CHALLENGE_TTL_SECONDS);
  }

  async lookup(kind: 'http-01' | 'tls-alpn-01', name: string): Promise<string | null> {
    const key = challengeKey(kind, name);
    const stored = await this.redis.get(key).catch(() => null);
    return stored === null ? null : opened(this.box, key, stored, this.logger);
  }

  async withdraw(kind: 'http-01' | 'tls-alpn-01', name: string): Promise<void> {
    await this.redis.del(challengeKey(kind, name)).catch(() => {});
  }

  close(): void {
    this.redis.disconnect();
    this.subscriber.disconnect();
  }
}

function challengeKey(kind: string, name: string): string {
  return `${PREFIX}${kind}:${name.toLowerCase()}`;
}

/** The plain value, or null (with one line) when it was not sealed by this fleet. */
function opened(box: SecretBox, key: string, stored: string, logger: Logger): string | null {
  try {
    return box.open(key, stored);
  } catch (err) {
    logger.warn(`Redis key ${key} is refused: ${(err as Error).message}; check that every replica has the same redisOptions.secretKey(File), and who else writes to this Redis`);
    return null;
  }
}

/**
 * Redis first, the disk as the copy: what is written goes to both; what is read comes from Redis
 * while it answers, else from the disk (a replica restarted during an outage still serves the
 * last certificate it saw).
 */
class FleetStore implements AcmeStore {
  constructor(
    private readonly redis: Redis,
    private readonly disk: AcmeStorage,
    private readonly box: SecretBox,
    private readonly logger: Logger,
  ) {}

  init(): Promise<void> {
    return this.disk.init();
  }

  /** The first replica's key becomes the fleet's (SET NX), as for the token signing key. */
  async account(directoryUrl: string): Promise<StoredAccount> {
    const keyName = `${PREFIX}account-key`;
    let stored = await this.redis.get(keyName);
    if (stored === null) {
      await this.redis.set(keyName, this.box.seal(keyName, (await acmeCrypto.createPrivateEcdsaKey('P-256')).toString()), 'NX');
      stored = (await this.redis.get(keyName))!;
    }
    const keyPem = opened(this.box, keyName, stored, this.logger);
    if (keyPem === null) throw new Error(`the ACME account key in Redis (${keyName}) is refused; if every replica has the same redisOptions.secretKey(File), delete it (a new account is made)`);
    const url = await this.redis.hget(`${PREFIX}account-urls`, directoryUrl);
    return { keyPem, url };
  }

  async saveAccountUrl(directoryUrl: string, url: string | null): Promise<void> {
    if (url === null) await this.redis.hdel(`${PREFIX}account-urls`, directoryUrl);
    else await this.redis.hset(`${PREFIX}account-urls`, directoryUrl, url);
  }

  async certificate(): Promise<StoredCertificate | null> {
    const key = `${PREFIX}certificate`;
    let stored: string | null;
    try {
      stored = await this.redis.get(key);
    } catch {
      return this.disk.certificate();
    }
    const text = stored === null ? null : opened(this.box, key, stored, this.logger);
    if (text === null) return this.disk.certificate();
    try {
      const parsed = JSON.parse(text) as { certPem: string; keyPem: string; directoryUrl: string };
      const pair: CertificatePair = { certPem: parsed.certPem, keyPem: parsed.keyPem };
      return { pair, directoryUrl: parsed.directoryUrl };
    } catch {
      return this.disk.certificate();
    }
  }

  async saveCertificate(stored: StoredCertificate): Promise<void> {
    const key = `${PREFIX}certificate`;
    await this.redis.set(key, this.box.seal(key, JSON.stringify({ ...stored.pair, directoryUrl: stored.directoryUrl })));
    await this.disk.saveCertificate(stored);
  }
}
