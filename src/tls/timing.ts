/** Pure time decisions (renewal, retry, readiness) plus a timer that can wait longer than 24.8 days. */

const DAY_MS = 24 * 60 * 60 * 1000;
// setTimeout fires immediately for delays above 2^31-1 ms; renewals of 90-day certificates are ~60 days away.
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

export interface Validity {
  notBefore: Date;
  notAfter: Date;
}

/**
 * When to renew: two thirds into the lifetime (what Let's Encrypt recommends, and it scales to
 * short-lived certificates), but never more than `renewBeforeDays` ahead of expiry. A random
 * delay of up to a tenth of the remaining time spreads out a fleet restarted together.
 */
export function renewalTime(cert: Validity, renewBeforeDays: number, random = Math.random): Date {
  const start = cert.notBefore.getTime();
  const end = cert.notAfter.getTime();
  const base = Math.max(start + ((end - start) * 2) / 3, end - renewBeforeDays * DAY_MS);
  return new Date(base + random() * (end - base) * 0.1);
}

export interface Backoff {
  minMs: number;
  maxMs: number;
}

/** Doubling delay for the n-th consecutive failure (0-based), capped. */
export function retryDelay(failures: number, backoff: Backoff): number {
  return Math.min(backoff.maxMs, backoff.minMs * 2 ** Math.min(failures, 30));
}

/**
 * Readiness margin: 7 days, or a sixth of the lifetime for short-lived certificates (which
 * would otherwise never count as ready). Renewal starts at two thirds, so crossing this
 * margin means renewal has been failing for a while.
 */
export function expiryMargin(cert: Validity): number {
  return Math.min(7 * DAY_MS, (cert.notAfter.getTime() - cert.notBefore.getTime()) / 6);
}

/** A one-shot timer for a wall-clock instant, possibly months away. Does not keep the process alive. */
export class Alarm {
  private handle: NodeJS.Timeout | undefined;

  set(at: Date, fire: () => void): void {
    this.clear();
    const remaining = at.getTime() - Date.now();
    if (remaining > MAX_TIMEOUT_MS) {
      this.handle = setTimeout(() => this.set(at, fire), MAX_TIMEOUT_MS);
    } else {
      this.handle = setTimeout(() => {
        this.handle = undefined;
        fire();
      }, Math.max(0, remaining));
    }
    this.handle.unref();
  }

  /** Set and not yet fired. */
  get pending(): boolean {
    return this.handle !== undefined;
  }

  clear(): void {
    clearTimeout(this.handle);
    this.handle = undefined;
  }
}
