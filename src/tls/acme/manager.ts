import type { AcmeConfig } from '../../config/types.js';
import type { Logger } from '../../observe/logger.js';
import { coversNames, inspectPair, type CertificateInfo, type CertificatePair } from '../certificate.js';
import { createSelfSigned } from '../self-signed.js';
import type { CertificateSlot } from '../slot.js';
import { Alarm, renewalTime, retryDelay, type Backoff } from '../timing.js';
import { connectAcme, describeAcmeError, tuneAcmeRequestRetries, type AcmeConnection } from './http.js';
import { orderCertificate, type Responders } from './issuer.js';
import { AcmeStorage, type AcmeStore } from './storage.js';
import type { AcmeFleet, OrderLock } from './fleet.js';
import { adoptionStep } from './adoption.js';

export interface AcmeManagerOptions {
  acme: AcmeConfig;
  /** Contents of tls.acme.caFile. */
  caPem: string | null;
  slot: CertificateSlot;
  responders: Responders;
  retry: Backoff;
  logger: Logger;
  /** Replicas sharing a Redis: one order at a time, one certificate for all (fleet.ts). */
  fleet?: AcmeFleet;
  /** How long a replica that found the order lock taken waits before it looks again (plus up to as much at random). */
  recheckMs?: number;
}

/** How CAs word "the account URL you sent is unknown" (pebble after a restart, Boulder for a purged account). */
const UNKNOWN_ACCOUNT = /accountDoesNotExist|account\b.*\bnot found|no account exists/i;

/**
 * Keeps an ACME certificate in the slot: the stored one when it still fits, otherwise a
 * temporary self-signed one while ordering in the background (TLS is never refused); renews at
 * renewalTime(); on failure keeps what it serves and retries with a doubling delay.
 */
export class AcmeManager {
  private readonly storage: AcmeStore;
  private readonly connection: AcmeConnection;
  private readonly alarm = new Alarm();
  private failures = 0;
  private running = false;
  /** An alarm fired while an order ran: it is not dropped, the order looks again once it ends. */
  private firedWhileRunning = false;
  private closed = false;
  private lastError: string | null = null;
  /** Orders since start, by how they ended: for the metrics (registry_gate_acme_orders_total). */
  readonly orders = { issued: 0, failed: 0 };

  constructor(private readonly options: AcmeManagerOptions) {
    this.storage = options.fleet?.store ?? new AcmeStorage(options.acme.storageDir);
    tuneAcmeRequestRetries();
    this.connection = connectAcme(options.acme.directoryUrl, options.caPem);
  }

  async start(): Promise<void> {
    const { acme, slot, logger } = this.options;
    await this.storage.init();
    await this.options.fleet?.listen(() => void this.adoptShared());
    const stored = await this.loadStored();
    if (stored) {
      slot.replace({ pair: stored.pair, info: stored.info, origin: 'acme' });
      logger.info({ serial: stored.info.serial, notAfter: stored.info.notAfter.toISOString() }, 'acme: using the stored certificate');
      if (stored.reorder === null) {
        this.scheduleRenewal(stored.info);
        return;
      }
      logger.info({ reason: stored.reorder }, 'acme: the stored certificate no longer fits the config, ordering a new one');
    } else if (slot.get()?.origin !== 'acme') {
      // (A certificate another replica announced while this one was starting is already served.)
      const pair = await createSelfSigned(acme.domains, 90);
      slot.replace({ pair, info: inspectPair(pair), origin: 'temporary' });
      logger.info({ domains: acme.domains }, 'acme: serving a temporary self-signed certificate until the CA issues one');
    }
    this.alarm.set(new Date(), () => void this.order());
  }

  /** The CA's last error while no order has succeeded since, for readiness messages. */
  get lastFailure(): string | null {
    return this.lastError;
  }

  close(): void {
    this.closed = true;
    this.alarm.clear();
    this.connection.release();
    this.options.fleet?.close();
  }

  /**
   * A stored certificate that is still valid is served even when it no longer fits the config
   * (another CA, fewer names): until the new order completes it is still better for existing
   * clients than a self-signed stand-in. `reorder` says why a new one is needed.
   */
  private async loadStored(): Promise<{ pair: CertificatePair; info: CertificateInfo; reorder: string | null } | null> {
    const { acme, logger } = this.options;
    const stored = await this.storage.certificate();
    if (!stored) return null;
    let info: CertificateInfo;
    try {
      info = inspectPair(stored.pair);
    } catch (err) {
      logger.warn({ err: (err as Error).message, storageDir: acme.storageDir }, 'acme: ignoring the unusable stored certificate');
      return null;
    }
    if (info.notAfter.getTime() <= Date.now()) return null;
    let reorder: string | null = null;
    if (stored.directoryUrl !== acme.directoryUrl) reorder = `issued by ${stored.directoryUrl}`;
    else if (!coversNames(info, acme.domains)) reorder = `made for ${info.names.join(', ')}`;
    return { pair: stored.pair, info, reorder };
  }

  private scheduleRenewal(info: CertificateInfo): void {
    const at = renewalTime(info, this.options.acme.renewBeforeDays);
    this.options.logger.info({ renewAt: at.toISOString(), notAfter: info.notAfter.toISOString() }, 'acme: renewal scheduled');
    this.alarm.set(at, () => void this.order());
  }

  /** Serves the fleet's certificate when adoptionStep says so; `replacing` is the serial an order set out to replace. */
  private async adoptShared(replacing: string | null = null): Promise<'adopt' | 'current' | 'order'> {
    if (this.closed) return 'order';
    const stored = await this.loadStored().catch(() => null);
    const fits = stored && stored.reorder === null ? stored : null;
    const current = this.options.slot.get();
    const step = adoptionStep(current && { origin: current.origin, serial: current.info.serial, notAfter: current.info.notAfter }, fits?.info ?? null, replacing);
    if (step !== 'adopt' || !fits) return step;
    this.options.slot.replace({ pair: fits.pair, info: fits.info, origin: 'acme' });
    this.failures = 0;
    this.lastError = null;
    this.options.logger.info(
      { serial: fits.info.serial, notAfter: fits.info.notAfter.toISOString() },
      'acme: using the certificate another replica obtained, for new connections',
    );
    this.scheduleRenewal(fits.info);
    return 'adopt';
  }

  private async order(): Promise<void> {
    if (this.closed) return;
    if (this.running) {
      this.firedWhileRunning = true;
      return;
    }
    this.running = true;
    const { acme, slot, logger, responders, fleet } = this.options;
    const served = slot.get();
    const replacing = served?.origin === 'acme' ? served.info.serial : null;
    let lock: OrderLock | null = null;
    try {
      const started = Date.now();
      if (fleet) {
        lock = await fleet.tryLock();
        if (!lock) {
          const recheck = this.options.recheckMs ?? 15_000;
          logger.info({ recheckSeconds: recheck / 1000 }, 'acme: another replica is ordering the certificate; waiting for it');
          this.alarm.set(new Date(Date.now() + recheck * (1 + Math.random())), () => void this.order());
          return;
        }
        // It may have been renewed since this replica's alarm was set; an adoption schedules the next renewal.
        if ((await this.adoptShared(replacing)) !== 'order') return;
      }
      await this.connection.checkDirectory();
      const pair = await orderCertificate(acme, this.storage, responders, logger);
      const info = inspectPair(pair);
      if (this.closed) return;
      // An unstorable certificate is still served; re-ordering because of a full disk would burn the CA's rate limits.
      await this.storage.saveCertificate({ pair, directoryUrl: acme.directoryUrl }).catch((err: Error) => {
        logger.error({ err: err.message, storageDir: acme.storageDir }, 'acme: cannot store the certificate; a restart will order again');
      });
      slot.replace({ pair, info, origin: 'acme' });
      await fleet?.announce().catch((err: Error) => logger.warn({ err: err.message }, 'acme: cannot tell the other replicas of the new certificate; they find it at their next check'));
      this.orders.issued++;
      this.failures = 0;
      this.lastError = null;
      logger.info(
        { domains: acme.domains, serial: info.serial, notAfter: info.notAfter.toISOString(), ms: Date.now() - started },
        'acme: certificate issued and in use for new connections',
      );
      this.scheduleRenewal(info);
    } catch (err) {
      if (this.closed) return;
      const message = describeAcmeError(err);
      if (UNKNOWN_ACCOUNT.test(message)) {
        // Forgetting the URL makes the next attempt register the same key again.
        await this.storage.saveAccountUrl(acme.directoryUrl, null).catch((saveErr: Error) => {
          logger.warn({ err: saveErr.message }, 'acme: cannot forget the unknown account URL');
        });
      }
      this.orders.failed++;
      const delay = retryDelay(this.failures++, this.options.retry);
      this.lastError = message;
      const current = slot.get();
      logger.error(
        {
          err: message,
          directoryUrl: acme.directoryUrl,
          retryInSeconds: delay / 1000,
          serving: current?.origin === 'acme' ? `previous certificate, expires ${current.info.notAfter.toISOString()}` : 'temporary self-signed certificate',
        },
        'acme: ordering a certificate failed',
      );
      this.alarm.set(new Date(Date.now() + delay), () => void this.order());
    } finally {
      await lock?.release();
      this.running = false;
      if (this.firedWhileRunning) {
        this.firedWhileRunning = false;
        if (!this.alarm.pending && !this.closed) this.alarm.set(new Date(), () => void this.order());
      }
    }
  }
}
