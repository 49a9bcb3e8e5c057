import http from 'node:http';
import https from 'node:https';

/**
 * One GET with a short timeout, used by readiness checks. Certificates are not verified here:
 * readiness only asks "is it listening and answering"; tests that care about TLS verify on
 * their own requests.
 */
export function probeStatus(url: string, timeoutMs = 2_000): Promise<number> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const mod = u.protocol === 'https:' ? https : http;
    const req = mod.request(
      u,
      { method: 'GET', agent: false, timeout: timeoutMs, rejectUnauthorized: false },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url} within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}
