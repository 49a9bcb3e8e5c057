import { run } from './process.js';

export interface CurlAnswer {
  status: number;
  head: string;
  body: string;
}

/**
 * curl as an operator types it, trusting `caFile`: `-u user:pass` when creds are given (redacted
 * from any error), extra arguments as they are. curl sends the request target as written, which
 * Node's clients would normalise.
 */
export async function curl(caFile: string, url: string, creds: { user: string; pass: string } | null, ...extra: string[]): Promise<CurlAnswer> {
  const auth = creds ? ['-u', `${creds.user}:${creds.pass}`] : [];
  const res = await run('curl', ['-sS', '--cacert', caFile, '-D', '-', '-o', '-', ...auth, ...extra, url], { timeoutMs: 30_000, redact: creds ? [creds.pass] : [] });
  const [head = '', body = ''] = res.stdout.split(/\r\n\r\n/);
  return { status: Number(/^HTTP\/\S+ (\d+)/.exec(head)?.[1]), head, body };
}
