import https from 'node:https';
import tls from 'node:tls';
import { axios as acmeAxios } from 'acme-client';

interface AcmeSettings {
  retryMaxAttempts: number;
  retryDefaultDelay: number;
}

const REQUEST_TIMEOUT_MS = 30_000;

/**
 * acme-client retries failed requests itself (network errors, 429, 5xx) up to 5 times with
 * 5, 10, 15… s pauses (Retry-After wins when the CA sends one). Ordering already runs in a retry
 * loop with its own backoff and logging, so the inner loop only hid an unreachable CA for 75 s.
 * A short inner retry still rides over a single hiccup without restarting a whole order. These
 * settings live on acme-client's module-wide axios instance; registry-gate is its only user.
 */
export function tuneAcmeRequestRetries(): void {
  const defaults = acmeAxios.defaults as unknown as { acmeSettings: AcmeSettings };
  defaults.acmeSettings.retryMaxAttempts = 3;
  defaults.acmeSettings.retryDefaultDelay = 1;
}

/**
 * Requests to the ACME server's origin get a timeout (axios has none, so a silent CA would stall
 * ordering forever) and, when `caPem` is set, an agent that trusts that CA in addition to the
 * system roots. Scoped by origin through an interceptor rather than axios defaults, so that each
 * runtime in a process keeps its own trust. Returns the function that removes it.
 */
export function scopeAcmeRequests(directoryUrl: string, caPem: string | null): () => void {
  const origin = new URL(directoryUrl).origin;
  const agent = caPem ? new https.Agent({ ca: [...tls.rootCertificates, caPem], keepAlive: true }) : undefined;
  const id = acmeAxios.interceptors.request.use((config) => {
    if (!config.url || new URL(config.url).origin !== origin) return config;
    if (!config.timeout) config.timeout = REQUEST_TIMEOUT_MS;
    if (agent) config.httpsAgent = agent;
    return config;
  });
  return () => {
    acmeAxios.interceptors.request.eject(id);
    agent?.destroy();
  };
}
