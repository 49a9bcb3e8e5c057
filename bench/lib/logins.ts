/**
 * What a login costs through the identify chain, by source, measured in this process against the
 * real parts: an htpasswd file (bcrypt cost 10, in the worker pool), Debian's slapd over ldaps
 * (search, bind as the user, nested group search, pooled connections) and access tokens (SHA-256,
 * the owner looked up again in htpasswd) and OIDC ID tokens from a real issuer over TLS (RS256, the
 * issuer's keys fetched once before, as a running proxy holds them). "First" is a login the chain has not seen (the source
 * is asked); "remembered" is the same login again within the source's cache time (a map lookup);
 * "8 at once" is logins per second with eight distinct users in flight from eight clients.
 */
import path from 'node:path';
import { defaultConfig } from '../../src/config/defaults.js';
import { createSources } from '../../src/auth/sources/create.js';
import { Identifier } from '../../src/auth/identify.js';
import { TokensSource } from '../../src/auth/sources/tokens.js';
import type { IdentitySource } from '../../src/auth/sources/source.js';
import { TokenManager } from '../../src/auth/access-tokens/manage.js';
import { VerifyPool } from '../../src/auth/verify-pool.js';
import { createLogger } from '../../src/observe/logger.js';
import { writeHtpasswd } from '../../test/harness/htpasswd.js';
import { directorySource, startSlapd } from '../../test/harness/slapd.js';
import { makeTempDir, removeTempDir } from '../../test/harness/tmp.js';
import { githubClaims, startIssuer } from '../../test/harness/oidc-issuer.js';
import { makeTestCa } from '../../test/harness/tls-ca.js';
import { median } from './report.js';

export interface LoginCost {
  source: string;
  firstMs: number;
  rememberedUs: number;
  perSecondAt8: number;
}

const USERS = 64;
const ROUNDS = 3;

export async function measureLoginCost(): Promise<LoginCost[]> {
  const dir = await makeTempDir('bench-logins');
  const people: Record<string, string> = {};
  for (let i = 0; i < USERS; i++) people[`dir${i}`] = `directory-password-${i}`;
  const slapd = await startSlapd({ people, groups: { team: ['dir0', 'dir1'], outer: ['group:team'] } });
  const pool = new VerifyPool();
  const htpasswd: Record<string, string> = {};
  for (let i = 0; i < USERS; i++) htpasswd[`file${i}`] = `file-password-${i}`;
  const htpasswdFile = path.join(dir, 'htpasswd');
  await writeHtpasswd(htpasswdFile, htpasswd, 10);
  const ca = await makeTestCa();
  const issuer = await startIssuer(ca);
  const audience = 'https://registry.example.test';
  const base = defaultConfig();
  const config = {
    stateDir: dir,
    auth: {
      ...base.auth,
      sources: [
        { type: 'htpasswd' as const, file: htpasswdFile },
        directorySource(slapd, { nestedGroupsDepth: 2 }),
        { type: 'tokens' as const },
        { type: 'oidc' as const, name: 'ci', issuer: issuer.url, audience: [audience], caFile: ca.certFile, require: { repository_owner: 'acme' }, subject: '${repository}', groups: ['${repository_owner}'] },
      ],
    },
  };
  const sources = await createSources(config, { logger: createLogger('silent'), pool, redis: null, follow: false });
  const tokens = new TokenManager(sources.find((s): s is TokensSource => s instanceof TokensSource)!);
  const secrets: Record<string, string> = {};
  for (let i = 0; i < USERS; i++) {
    const made = await tokens.create({ user: null, groups: new Set() }, { name: `robot${i}`, owner: `file${i}`, scopes: ['**:pull'], expires: '1d' });
    if (!made.ok) throw new Error(`bench: cannot make a token: ${made.message}`);
    secrets[`robot${i}`] = made.value.secret;
  }
  const idTokens: Record<string, string> = {};
  for (let i = 0; i < USERS; i++) idTokens[`job${i}`] = await issuer.mint(githubClaims(audience, { repository: `acme/app-${i}` }), { expiresInSeconds: 3600 });
  const limitsOff = { ...base.loginLimits, enabled: false };
  const results: LoginCost[] = [];
  try {
    const [file, directory, robots, jobs] = sources as [IdentitySource, IdentitySource, IdentitySource, IdentitySource];
    const warm = await new Identifier([jobs], limitsOff).login('oidc', idTokens.job0!, '192.0.2.1');
    if (!warm.ok) throw new Error(`bench: an ID token login failed: ${warm.message}`);
    // Each source first in the chain (its own cost), then the directory behind htpasswd: a name
    // htpasswd lacks still costs it a bcrypt check against a dummy hash (so that timing does not
    // tell which names it holds).
    for (const [label, credentials, order] of [
      ['htpasswd (bcrypt cost 10)', htpasswd, [file, directory, robots]],
      ['directory (slapd, ldaps)', people, [directory, robots, file]],
      ['access token', secrets, [robots, file, directory]],
      ['directory, behind htpasswd', people, [file, directory, robots]],
      ['ID token (OIDC, keys cached)', idTokens, [jobs, robots, file, directory]],
    ] as const) {
      const names = Object.keys(credentials);
      const first: number[] = [];
      const remembered: number[] = [];
      const rates: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        // A fresh chain each round: nothing remembered from the round before.
        const chain = new Identifier(order, limitsOff);
        for (const user of names.slice(0, 16)) {
          const started = process.hrtime.bigint();
          const outcome = await chain.login(user, credentials[user]!, '192.0.2.1');
          first.push(Number(process.hrtime.bigint() - started) / 1e6);
          if (!outcome.ok) throw new Error(`bench: ${label} login of ${user} failed: ${outcome.message}`);
        }
        const again = 2000;
        const started = process.hrtime.bigint();
        for (let i = 0; i < again; i++) await chain.login(names[i % 16]!, credentials[names[i % 16]!]!, '192.0.2.1');
        remembered.push(Number(process.hrtime.bigint() - started) / 1e3 / again);
        const burst = names.slice(16);
        const fresh = new Identifier(order, limitsOff);
        const t0 = process.hrtime.bigint();
        let next = 0;
        await Promise.all(
          Array.from({ length: 8 }, async (_, client) => {
            while (next < burst.length) {
              const user = burst[next++]!;
              const outcome = await fresh.login(user, credentials[user]!, `192.0.2.${10 + client}`);
              if (!outcome.ok) throw new Error(`bench: ${label} login of ${user} failed: ${outcome.message}`);
            }
          }),
        );
        rates.push(burst.length / (Number(process.hrtime.bigint() - t0) / 1e9));
      }
      results.push({ source: label, firstMs: median(first), rememberedUs: median(remembered), perSecondAt8: median(rates) });
    }
    return results;
  } finally {
    await Promise.all(sources.map((s) => s.close()));
    await pool.close();
    await slapd.stop();
    await issuer.stop();
    await ca.dispose();
    await removeTempDir(dir);
  }
}
