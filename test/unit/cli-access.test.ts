/** `registry-gate access check` and the rules `config check` prints, as an operator runs them (dist/). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import bcrypt from 'bcryptjs';

function setup(config: Record<string, unknown>): string {
  const dir = mkdtempSync(join(tmpdir(), 'rg-cli-access-'));
  writeFileSync(join(dir, 'htpasswd'), `alice:${bcrypt.hashSync('x', 4)}\nroot:${bcrypt.hashSync('y', 4)}\n`);
  writeFileSync(join(dir, 'htgroup'), 'team-a: alice\n');
  const file = join(dir, 'proxy.config.json');
  writeFileSync(file, JSON.stringify({ ...config, auth: { htpasswdFile: 'htpasswd', ...(config.auth as object) } }));
  return file;
}

const cli = (...args: string[]) => spawnSync(process.execPath, ['dist/cli/main.js', ...args], { encoding: 'utf8' });

const RULES = {
  auth: { mode: 'private' },
  groupsFile: 'htgroup',
  groups: { admins: ['root'] },
  access: [
    { who: ['group:admins'], repositories: ['**'], actions: ['*'], comment: 'operators' },
    { who: ['group:team-a'], repositories: ['team-a/**'], actions: ['pull', 'push'] },
    { who: ['*'], repositories: ['public/**'], actions: ['pull'] },
  ],
  protectedTags: [{ repositories: ['**'], tags: ['v*'], who: ['group:admins'] }],
};

test('access check: allow / deny, exit 0 / 1, and the rule that decided', () => {
  const file = setup(RULES);
  const allow = cli('access', 'check', 'alice', 'team-a/app', 'push', '--config', file);
  assert.equal(allow.status, 0, allow.stderr);
  assert.equal(allow.stdout, 'allow: user "alice" (groups: team-a) may push team-a/app\n  decided by rule 2. group:team-a → team-a/** : pull, push\n');

  const deny = cli('access', 'check', 'alice', 'team-a/app', 'delete', '--config', file);
  assert.equal(deny.status, 1);
  assert.match(deny.stdout, /^deny: user "alice" \(groups: team-a\) may not delete team-a\/app\n  decided by rule 2\. .*\n  why: rule 2 does not allow delete\n$/);

  const nobody = cli('access', 'check', 'anonymous', 'team-b/app', 'pull', '--config', file);
  assert.equal(nobody.status, 1);
  assert.equal(nobody.stdout, 'deny: anonymous callers may not pull team-b/app\n  why: no rule gives access to it\n');

  const ghost = cli('access', 'check', 'mallory', 'public/base', 'pull', '--config', file);
  assert.equal(ghost.status, 0);
  assert.match(ghost.stdout, /note: no identity source knows "mallory", so nobody can log in as that user/);
});

test('access check without rules explains the mode; bad input exits 2 with the reason', () => {
  const file = setup({ auth: { mode: 'read-public' } });
  const anonymous = cli('access', 'check', 'anonymous', 'x/y', 'pull', '--config', file);
  assert.equal(anonymous.status, 0);
  assert.match(anonymous.stdout, /decided by rule 2\. anonymous → \*\* : pull   \(the rules of auth\.mode "read-public"\)/);
  assert.equal(cli('access', 'check', 'alice', 'x', 'write', '--config', file).status, 2);
  const badName = cli('access', 'check', 'alice', 'Bad/Name', 'pull', '--config', file);
  assert.equal(badName.status, 2);
  assert.match(badName.stderr, /"Bad\/Name" is not a repository name/);
  assert.equal(cli('access', 'check', 'alice', '--config', file).status, 2);
});

test('config check lists the rules in force and the protected tags', () => {
  const listed = cli('config', 'check', '--config', setup(RULES));
  assert.equal(listed.status, 0, listed.stderr);
  assert.match(listed.stdout, /# access rules in force \(from "access"; first match wins, anything unmatched is denied\):\n#   1\. group:admins → \*\* : \*   # operators\n#   2\. group:team-a → team-a\/\*\* : pull, push\n#   3\. \* → public\/\*\* : pull\n/);
  assert.match(listed.stdout, /# protected tags 1: v\* in \*\*; may still be moved by: group:admins/);
  assert.match(listed.stdout, /# warning: auth\.htpasswdFile: 2 user\(s\) with a bcrypt cost below 10: alice \(4\), root \(4\); each guess is cheap/);
  const byMode = cli('config', 'check', '--config', setup({ auth: { mode: 'private' } }));
  assert.match(byMode.stdout, /# access rules in force \(those of auth\.mode "private"; .*\n#   1\. authenticated → \*\* : \*\n/);
});

test('access check for an access token: its owner\'s rules within its scopes', () => {
  const file = setup({ ...RULES, auth: { mode: 'private', sources: [{ type: 'tokens' }, { type: 'htpasswd', file: 'htpasswd' }] } });
  const early = cli('token', 'create', 'ci', '--owner', 'alice', '--scope', 'team-a/**:pull', '--expires', '1d', '--config', file);
  assert.equal(early.status, 1);
  assert.match(early.stderr, /stateDir: .*data does not exist; start the proxy once \(it creates it\), or create it owned by the proxy's user\n$/);
  mkdirSync(join(dirname(file), 'data'), { mode: 0o700 });
  const made = cli('token', 'create', 'ci', '--owner', 'alice', '--scope', 'team-a/**:pull', '--expires', '1d', '--config', file);
  assert.equal(made.status, 0, made.stderr);
  const pull = cli('access', 'check', 'token:ci', 'team-a/app', 'pull', '--config', file);
  assert.equal(pull.status, 0, pull.stdout + pull.stderr);
  assert.match(pull.stdout, /^allow: access token "ci" of "alice" \(groups: team-a\) may pull team-a\/app\n  decided by rule 2\./);
  const push = cli('access', 'check', 'token:ci', 'team-a/app', 'push', '--config', file);
  assert.equal(push.status, 1);
  assert.match(push.stdout, /why: access token "ci" is limited to team-a\/\*\*:pull/);
  assert.equal(cli('access', 'check', 'alice', 'team-a/app', 'push', '--config', file).status, 0, 'alice herself may');
  const missing = cli('access', 'check', 'token:nope', 'team-a/app', 'pull', '--config', file);
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /no access token "nope"/);
});

test('access check --claims: what a CI job with these claims may do', () => {
  const file = setup({
    auth: {
      mode: 'private',
      sources: [
        { type: 'oidc', name: 'github', issuer: 'https://token.actions.githubusercontent.com', audience: ['https://registry.example.com'], require: { repository_owner: 'acme' }, subject: '${repository}', groups: ['${repository_owner}'] },
        { type: 'htpasswd', file: 'htpasswd' },
      ],
    },
    access: [{ who: ['oidc:github'], claims: { ref: 'refs/heads/main' }, repositories: ['${claims.repository}'], actions: ['pull', 'push'] }],
  });
  const job = (claims: Record<string, unknown>): string => {
    const path = join(dirname(file), `job-${Math.random()}.json`);
    writeFileSync(path, JSON.stringify({ repository: 'acme/app', repository_owner: 'acme', ref: 'refs/heads/main', ...claims }));
    return path;
  };
  const main = cli('access', 'check', 'oidc:github', 'acme/app', 'push', '--claims', job({}), '--config', file);
  assert.equal(main.status, 0, main.stderr);
  assert.match(main.stdout, /^allow: job "acme\/app" of oidc source "github" \(groups: acme\) may push acme\/app\n  decided by rule 1\. oidc:github with ref=refs\/heads\/main → \$\{claims\.repository\} : pull, push\n/);
  const branch = cli('access', 'check', 'oidc:github', 'acme/app', 'push', '--claims', job({ ref: 'refs/heads/dev' }), '--config', file);
  assert.equal(branch.status, 1);
  assert.match(branch.stdout, /^deny: job "acme\/app" of oidc source "github" \(groups: acme\) may not push acme\/app\n  why: no rule gives access to it/);
  const stranger = cli('access', 'check', 'oidc:github', 'evil/app', 'push', '--claims', job({ repository: 'evil/app', repository_owner: 'evil' }), '--config', file);
  assert.equal(stranger.status, 1);
  assert.equal(stranger.stderr, 'registry-gate: ID token refused by oidc source "github": claim "repository_owner" is "evil", not "acme"\n');
  const missing = cli('access', 'check', 'oidc:github', 'acme/app', 'push', '--config', file);
  assert.equal(missing.status, 2);
  assert.equal(missing.stderr, 'registry-gate: oidc:github needs --claims FILE (the job\'s ID token claims as JSON)\n');
});
