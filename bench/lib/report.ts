export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Fixed-width text table; the first column is left-aligned, the others right-aligned. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

export function fmt(value: number, digits = 0): string {
  if (!Number.isFinite(value)) return '-';
  return value.toFixed(digits);
}

export function ratio(a: number, b: number): string {
  return Number.isFinite(a) && Number.isFinite(b) && b > 0 ? (a / b).toFixed(2) : '-';
}

export interface Verdict {
  target: string;
  measured: string;
  pass: boolean;
}

export function verdictLines(verdicts: readonly Verdict[]): string {
  return verdicts.map((v) => `${v.pass ? 'PASS' : 'FAIL'}  ${v.target.padEnd(52)} ${v.measured}`).join('\n');
}

export interface Best<K extends string> {
  /** "-" when no candidate has a figure. */
  name: K | '-';
  value: number;
}

/** Which of `names` did best at one figure (the highest rate, or the lowest latency or CPU); figures that are not finite do not count. */
export function best<K extends string>(names: readonly K[], value: (name: K) => number, better: 'higher' | 'lower'): Best<K> {
  let found: Best<K> = { name: '-', value: NaN };
  for (const name of names) {
    const v = value(name);
    if (!Number.isFinite(v)) continue;
    if (!Number.isFinite(found.value) || (better === 'higher' ? v > found.value : v < found.value)) found = { name, value: v };
  }
  return found;
}
