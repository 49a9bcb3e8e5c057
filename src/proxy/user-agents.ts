/** Compiled once at start: the pipeline tests every /v2/ request against these. */
export function userAgentBlocker(patterns: string[]): (userAgent: string | undefined) => boolean {
  if (patterns.length === 0) return () => false;
  const regexes = patterns.map((p) => new RegExp(p));
  return (userAgent) => userAgent !== undefined && regexes.some((r) => r.test(userAgent));
}
