/**
 * What a replica does with the fleet's stored certificate when it looks at it: on an
 * announcement, and again once it holds the order lock (the certificate may have been renewed
 * while it waited).
 */
import type { CertificateOrigin } from '../slot.js';

export interface ServedCertificate {
  origin: CertificateOrigin;
  serial: string;
  notAfter: Date;
}

export interface SharedCertificate {
  serial: string;
  notAfter: Date;
}

/**
 * - 'adopt': the stored certificate outlives the one served (another replica ordered it).
 * - 'current': the one served is the stored one and it is not the certificate this order set out
 *   to replace — an announcement brought it while the order waited for the lock, and ordering now
 *   would be a second order for nothing (seen: two orders for a fleet of three starting together).
 * - 'order': nothing better is stored, or the one served is the very certificate whose renewal is
 *   due. That is decided by serial, never by recomputing the randomised renewal time: a fresh draw
 *   could put it back in the future and a due renewal would be skipped (seen: a fleet that never
 *   renewed).
 *
 * `stored` is null when nothing is stored or what is stored does not fit the config; `replacing`
 * is the serial served when the order began (null for a temporary certificate or on an announcement).
 */
export function adoptionStep(served: ServedCertificate | null, stored: SharedCertificate | null, replacing: string | null): 'adopt' | 'current' | 'order' {
  if (!stored) return 'order';
  if (served?.origin !== 'acme' || served.notAfter.getTime() < stored.notAfter.getTime()) return 'adopt';
  return served.serial === stored.serial && served.serial !== replacing ? 'current' : 'order';
}
