import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { run } from '../../test/harness/process.js';

export interface WrkResult {
  requests: number;
  rps: number;
  p50ms: number;
  p99ms: number;
  /** Responses outside 2xx/3xx plus socket errors: must be 0, or the figures measure refusals. */
  failures: number;
}

export interface WrkRun {
  url: string;
  method: 'GET' | 'HEAD';
  headers: Record<string, string>;
  connections: number;
  seconds: number;
}

function toMs(value: string, unit: string): number {
  const n = Number(value);
  if (unit === 'us') return n / 1000;
  if (unit === 'ms') return n;
  if (unit === 's') return n * 1000;
  if (unit === 'm') return n * 60_000;
  throw new Error(`wrk: unknown latency unit ${unit}`);
}

function parseWrk(out: string): WrkResult {
  const pct = (p: string): number => {
    const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(out);
    if (!m) throw new Error(`wrk output has no ${p}% latency:\n${out}`);
    return toMs(m[1]!, m[2]!);
  };
  const requests = /(\d+) requests in/.exec(out);
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  if (!requests || !rps) throw new Error(`cannot read wrk output:\n${out}`);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = socketErrors ? socketErrors.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
  return {
    requests: Number(requests[1]),
    rps: Number(rps[1]),
    p50ms: pct('50'),
    p99ms: pct('99'),
    failures: Number(non2xx?.[1] ?? 0) + errors,
  };
}

/** One `wrk` process (one thread: the second core is for the servers), keep-alive connections. */
export async function wrk(dir: string, o: WrkRun): Promise<WrkResult> {
  const script = path.join(dir, `wrk-${o.method.toLowerCase()}.lua`);
  await writeFile(script, `wrk.method = "${o.method}"\n`);
  const headerArgs = Object.entries(o.headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`]);
  const result = await run(
    'wrk',
    ['-t1', `-c${o.connections}`, `-d${o.seconds}s`, '--timeout', '10s', '--latency', '-s', script, ...headerArgs, o.url],
    { timeoutMs: (o.seconds + 30) * 1000, check: true },
  );
  return parseWrk(result.stdout);
}
