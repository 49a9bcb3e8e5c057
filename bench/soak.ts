/**
 * npm run soak [-- SECONDS]: the soak and fault run (bench/lib/soak.ts) for 10 minutes by default,
 * with 10,000 aborted uploads, a registry restart every 2 minutes and a Redis kill every 3.
 * Prints the report; exits 1 when a commit was lost or the descriptors did not come back.
 */
import { FD_SLACK, formatSoak, runSoak } from './lib/soak.js';

const seconds = Number(process.argv[2] ?? process.env.SOAK_SECONDS ?? 600);
if (!Number.isFinite(seconds) || seconds < 10) {
  console.error(`soak: the duration must be at least 10 seconds (got ${process.argv[2] ?? process.env.SOAK_SECONDS})`);
  process.exit(2);
}
const report = await runSoak({
  seconds,
  aborts: Number(process.env.SOAK_ABORTS ?? Math.round((10_000 * seconds) / 600)),
  registryRestarts: Math.max(1, Math.floor(seconds / 120)),
  redisKills: Math.max(1, Math.floor(seconds / 180)),
  log: (line) => console.log(line),
});
console.log(formatSoak(report));
const ok = report.lostCommits === 0 && report.fds.final <= report.fds.baseline + FD_SLACK;
console.log(ok ? 'soak: PASS (no lost commit, descriptors back to baseline)' : 'soak: FAIL');
process.exit(ok ? 0 : 1);
