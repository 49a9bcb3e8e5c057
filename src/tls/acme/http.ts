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

export interface AcmeConnection {
  /**
   * Fails with the network error (ECONNREFUSED, certificate problems, timeouts) when the
   * directory cannot be fetched. acme-client 5.4 loses exactly these: after its retries a request
   * that got no response ends in "Cannot read properties of undefined (reading 'config')".
   */
  checkDirectory(): Promise<void>;
  release(): void;
}

/**
 * Requests to the ACME server's origin get a timeout (axios has none, so a silent CA would stall
 * ordering forever) and, when `caPem` is set, an agent that trusts that CA in addition to the
 * system roots. Scoped by origin through an interceptor rather than axios defaults, so that each
 * runtime in a process keeps its own trust.
 */
export function connectAcme(directoryUrl: string, caPem: string | null): AcmeConnection {
  const origin = new URL(directoryUrl).origin;
  const agent = new https.Agent({ ca: caPem ? [...tls.rootCertificates, caPem] : undefined, keepAlive: true });
  const id = acmeAxios.interceptors.request.use((config) => {
    if (!config.url || new URL(config.url).origin !== origin) return config;
    if (!config.timeout) config.timeout = REQUEST_TIMEOUT_MS;
    config.httpsAgent = agent;
    return config;
  });
  return {
    checkDirectory: () =>
      new Promise((resolve, reject) => {
        const fail = (reason: string): void => reject(new Error(`cannot fetch the ACME directory ${directoryUrl}: ${reason}`));
        const req = https.get(directoryUrl, { agent, timeout: REQUEST_TIMEOUT_MS }, (res) => {
          res.resume();
          if (res.statusCode === 200) resolve();
          else fail(`HTTP ${res.statusCode}`);
        });
        req.on('timeout', () => req.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS / 1000} s`)));
        req.on('error', (err) => fail(err.message));
      }),
    release() {
      acmeAxios.interceptors.request.eject(id);
      agent.destroy();
    },
  };
}

/** The message to log for a failed order, with acme-client's lost network errors made readable (see checkDirectory). */
export function describeAcmeError(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return /reading 'config'/.test(message) ? 'the ACME server stopped answering mid-order (no response)' : message;
}
