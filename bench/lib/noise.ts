/**
 * What a guesser costs in log volume: thousands of failed logins from one address, against the
 * bench's proxy, and the lines its audit file and access log gained. The same wrong password
 * repeated (a broken script, a replay) and a different password each time (a guessing loop).
 * Runs last: it leaves its address and user name closed by the login limits.
 */
import https from 'node:https';
import { readFile, stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

export interface NoiseResult {
  label: string;
  requests: number;
  statuses: Record<string, number>;
  auditLines: number;
  logLines: number;
  logBytesPerRequest: number;
  seconds: number;
}

export const NOISE_REQUESTS = 3_000;
const IN_FLIGHT = 8;

async function lines(file: string): Promise<number> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text === '' ? 0 : text.split('\n').filter(Boolean).length;
}

async function bytes(file: string): Promise<number> {
  return (await stat(file).catch(() => null))?.size ?? 0;
}

export async function measureNoise(target: { url: string; caPem: string; auditFile: string; logFile: string }, address: string): Promise<NoiseResult[]> {
  const results: NoiseResult[] = [];
  const agent = new https.Agent({ keepAlive: true, maxSockets: IN_FLIGHT, ca: target.caPem, localAddress: address });
  const ask = (user: string, password: string) =>
    new Promise<number>((resolve, reject) => {
      const auth = Buffer.from(`${user}:${password}`).toString('base64');
      const req = https.request(`${target.url}/v2/`, { agent, headers: { authorization: `Basic ${auth}` } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end();
    });
  try {
    for (const [label, user, password] of [
      ['the same wrong password', 'noise-repeat', () => 'always-the-same-wrong-password'],
      ['a new wrong password each time', 'noise-guess', (i: number) => `guess-${i}`],
    ] as const) {
      const [auditBefore, logBefore, logBytesBefore] = [await lines(target.auditFile), await lines(target.logFile), await bytes(target.logFile)];
      const statuses: Record<string, number> = {};
      let next = 0;
      const started = process.hrtime.bigint();
      await Promise.all(
        Array.from({ length: IN_FLIGHT }, async () => {
          while (next < NOISE_REQUESTS) {
            const status = await ask(user, password(next++));
            statuses[status] = (statuses[status] ?? 0) + 1;
          }
        }),
      );
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      // The access log is written in batches (observe/logger.ts); let the last one land.
      await sleep(1500);
      const logBytes = (await bytes(target.logFile)) - logBytesBefore;
      results.push({
        label,
        requests: NOISE_REQUESTS,
        statuses,
        auditLines: (await lines(target.auditFile)) - auditBefore,
        logLines: (await lines(target.logFile)) - logBefore,
        logBytesPerRequest: logBytes / NOISE_REQUESTS,
        seconds,
      });
    }
    return results;
  } finally {
    agent.destroy();
  }
}
