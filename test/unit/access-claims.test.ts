/** Claim conditions, claim templates and rules on claims: pure decisions, as tables. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { claimAt, compileConditions, conditionProblem, pickClaims, renderTemplate, templateProblem, wildcardMatch, type ClaimCondition } from '../../src/access/claims.js';
import { compileGlob, globProblem } from '../../src/access/glob.js';
import { AccessRules, type Caller } from '../../src/access/rules.js';
import { ProtectedTags } from '../../src/access/protected-tags.js';
import type { AccessRuleConfig } from '../../src/config/types.js';
import { githubClaims, gitlabClaims } from '../harness/oidc-issuer.js';

const K8S = { sub: 'system:serviceaccount:ci:builder', 'kubernetes.io': { namespace: 'ci', serviceaccount: { name: 'builder' } } };

test('a claim path reaches nested claims, keys with dots and the flat form a registry token carries', () => {
  const rows: [string, Record<string, unknown>, string, unknown][] = [
    ['top level', { ref: 'refs/heads/main' }, 'ref', 'refs/heads/main'],
    ['a key with dots', K8S, 'kubernetes.io.namespace', 'ci'],
    ['deeper', K8S, 'kubernetes.io.serviceaccount.name', 'builder'],
    ['flat, as carried', { 'kubernetes.io.namespace': 'ci' }, 'kubernetes.io.namespace', 'ci'],
    ['missing', K8S, 'kubernetes.io.pod', undefined],
    ['through a plain value', { a: 'x' }, 'a.b', undefined],
    ['not the prototype', {}, 'constructor', undefined],
  ];
  for (const [what, claims, path, expected] of rows) assert.deepEqual(claimAt(claims, path), expected, what);
});

test('claim conditions: exact, patterns, any-of, and GitLab strings against true', () => {
  const gitlab = gitlabClaims('aud');
  const github = githubClaims('aud');
  const rows: [string, Record<string, ClaimCondition>, Record<string, unknown>, boolean][] = [
    ['exact', { repository_owner: 'acme' }, github, true],
    ['exact, another owner', { repository_owner: 'evil' }, github, false],
    ['pattern crosses "/"', { ref: 'refs/heads/*' }, github, true],
    ['pattern does not match', { ref: 'refs/tags/v*' }, github, false],
    ['any of a list', { ref: ['refs/heads/dev', 'refs/heads/main'] }, github, true],
    ['all must hold', { repository_owner: 'acme', ref: 'refs/heads/dev' }, github, false],
    ['GitLab "true" meets true', { ref_protected: true }, gitlab, true],
    ['GitLab "false" does not meet true', { ref_protected: true }, { ...gitlab, ref_protected: 'false' }, false],
    ['boolean true meets "true"', { ref_protected: 'true' }, { ref_protected: true }, true],
    ['number and its string', { project_id: 4821 }, gitlab, true],
    ['a missing claim meets nothing', { environment: '*' }, github, false],
    ['a list claim: one item meets it', { aud: 'b' }, { aud: ['a', 'b'] }, true],
    ['an object claim meets nothing', { 'kubernetes.io': '*' }, K8S, false],
    ['nested', { 'kubernetes.io.namespace': 'ci' }, K8S, true],
    ['a literal "?" is no wildcard', { ref: 'refs/heads/ma?n' }, github, false],
    ['too long to consider', { big: '*' }, { big: 'x'.repeat(2000) }, false],
  ];
  for (const [what, conditions, claims, expected] of rows) assert.equal(compileConditions(conditions).check(claims).ok, expected, what);
  const refused = compileConditions({ ref: 'refs/heads/main' }).check(githubClaims('aud', { ref: 'refs/heads/evil' }));
  assert.deepEqual(refused, { ok: false, claim: 'ref', why: 'claim "ref" is "refs/heads/evil", not "refs/heads/main"' });
  const missing = compileConditions({ environment: 'prod' }).check(github);
  assert.equal(missing.ok ? '' : missing.why, 'claim "environment" is missing, not "prod"');
});

test('the claim wildcard is plain "*" matching, and a hostile pattern costs nothing', () => {
  const reference = (pattern: string, text: string): boolean => new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.\\+?^$()[\]{}|/-]/g, '\\$&')).join('.*')}$`, 's').test(text);
  fc.assert(
    fc.property(fc.stringMatching(/^[ab*/]{0,8}$/), fc.stringMatching(/^[ab/]{0,10}$/), (pattern, text) => {
      assert.equal(wildcardMatch(pattern, text), reference(pattern, text), `${pattern} ~ ${text}`);
    }),
    { numRuns: 2000 },
  );
  const started = process.hrtime.bigint();
  assert.equal(wildcardMatch('*a*a*a*a*a*a*a*a*b', 'a'.repeat(1024)), false);
  assert.ok(Number(process.hrtime.bigint() - started) / 1e6 < 500);
});

test('templates build names from claims; a missing claim fails the whole template', () => {
  assert.deepEqual(renderTemplate('${repository}', githubClaims('aud')), { ok: true, text: 'acme/app' });
  assert.deepEqual(renderTemplate('k8s:${kubernetes.io.namespace}/${kubernetes.io.serviceaccount.name}', K8S), { ok: true, text: 'k8s:ci/builder' });
  assert.deepEqual(renderTemplate('${project_path}', githubClaims('aud')), { ok: false, why: 'claim "project_path" is missing or not a plain value' });
  assert.deepEqual(renderTemplate('${kubernetes.io}', K8S), { ok: false, why: 'claim "kubernetes.io" is missing or not a plain value' });
  assert.equal(templateProblem('${repository}'), null);
  assert.match(templateProblem('${a b}')!, /not a claim name/);
  assert.match(templateProblem('$HOME/${sub}')!, /"\$" outside/);
  assert.equal(conditionProblem('ref', 'refs/heads/main'), null);
  assert.match(conditionProblem('ref', [])!, /empty list/);
  assert.match(conditionProblem('ref', { a: 1 })!, /expected text/);
  assert.match(conditionProblem('r f', 'x')!, /not a claim name/);
});

test('a registry token carries only the claims read, flat', () => {
  assert.deepEqual(pickClaims(K8S, ['kubernetes.io.namespace', 'missing', 'kubernetes.io']), { 'kubernetes.io.namespace': 'ci' });
  assert.deepEqual(pickClaims({ aud: ['a', 'b', { x: 1 }] }, ['aud']), { aud: ['a', 'b'] });
});

const RULES: AccessRuleConfig[] = [
  { who: ['group:admins'], repositories: ['**'], actions: ['*'] },
  // Every GitHub repository of acme pushes to the registry repository of the same name, main only.
  { who: ['oidc:github'], claims: { repository_owner: 'acme', ref: 'refs/heads/main' }, repositories: ['${claims.repository}', '${claims.repository}/**'], actions: ['pull', 'push'] },
  { who: ['oidc:github'], repositories: ['${claims.repository}'], actions: ['pull'] },
  { who: ['oidc:gitlab'], claims: { ref_protected: true }, repositories: ['${claims.namespace_path}/**'], actions: ['pull', 'push'] },
  { who: ['authenticated'], repositories: ['${user}/**'], actions: ['pull', 'push'] },
];

function oidcCaller(issuer: string, claims: Record<string, unknown>, user = String(claims.sub)): Caller {
  return { user, groups: new Set(), issuer, claims };
}

test('rules on claims: who names the issuer, claims narrow it, repositories come from claims', () => {
  const rules = new AccessRules(RULES);
  const main = oidcCaller('github', githubClaims('aud', { repository: 'acme/App' }));
  const branch = oidcCaller('github', githubClaims('aud', { repository: 'acme/App', ref: 'refs/heads/feature' }));
  const other = oidcCaller('github', githubClaims('aud', { repository: 'evil/app' }));
  const gitlab = oidcCaller('gitlab', gitlabClaims('aud'));
  const unprotected = oidcCaller('gitlab', gitlabClaims('aud', { ref_protected: 'false' }));
  const person: Caller = { user: 'bob', groups: new Set() };
  const rows: [string, Caller, string, string, boolean][] = [
    ['main of acme/App pushes to acme/app (lower-cased)', main, 'acme/app', 'push', true],
    ['and below it', main, 'acme/app/cache', 'push', true],
    ['not to another repository', main, 'acme/other', 'push', false],
    ['a feature branch: rule 2 does not name it, rule 3 lets it pull', branch, 'acme/app', 'pull', true],
    ['a feature branch may not push', branch, 'acme/app', 'push', false],
    ['another owner: not rule 2', other, 'evil/app', 'push', false],
    ['another issuer never matches oidc:github', gitlab, 'acme/app', 'push', true],
    ['gitlab protected ref pushes to its namespace', gitlab, 'acme/anything', 'push', true],
    ['gitlab "false" does not', unprotected, 'acme/anything', 'push', false],
    ['a person is not named by oidc: rules', person, 'acme/app', 'push', false],
    ['a person keeps its own rules', person, 'bob/x', 'push', true],
  ];
  for (const [what, caller, repository, action, expected] of rows) {
    assert.equal(rules.decide(caller, { type: 'repository', name: repository, actions: [action] }).ok, expected, what);
  }
  assert.deepEqual(new Set(rules.claimPaths()), new Set(['repository_owner', 'ref', 'repository', 'ref_protected', 'namespace_path']));
});

test('claim placeholders in patterns: validation and values that cannot match', () => {
  assert.equal(globProblem('${claims.repository}/**', true), null);
  assert.equal(globProblem('${claims.kubernetes.io.namespace}/*', true), null);
  assert.match(globProblem('${claims.a b}', true)!, /"\$"/);
  assert.match(globProblem('${repository}', true)!, /"\$"/);
  const glob = compileGlob('ns/${claims.kubernetes.io.namespace}');
  assert.equal(glob.matches('ns/ci', { user: 'x', claims: K8S }), true);
  assert.equal(glob.matches('ns/ci', { user: 'x' }), false, 'no claims: nothing');
  assert.equal(glob.matches('ns/', { user: 'x', claims: { 'kubernetes.io': { namespace: '' } } }), false, 'an empty claim matches nothing');
  assert.equal(compileGlob('${claims.a}/**').matches('x/y', { user: null, claims: { a: 'x' } }), true);
  assert.equal(compileGlob('${claims.a}').matches('x.y', { user: null, claims: { a: 'x*y' } }), false, 'a claim is literal text, never a pattern');
});

test('protected tags may require claims: "v*" moves only from a protected ref', () => {
  const tags = new ProtectedTags([{ repositories: ['**'], tags: ['v*'], who: ['oidc:gitlab', 'group:admins'], claims: { ref_protected: true } }]);
  const protectedRef = oidcCaller('gitlab', gitlabClaims('aud'));
  const unprotected = oidcCaller('gitlab', gitlabClaims('aud', { ref_protected: 'false' }));
  const admin: Caller = { user: 'root', groups: new Set(['admins']) };
  assert.equal(tags.protecting(protectedRef, 'acme/app', 'v1'), null);
  assert.equal(tags.protecting(unprotected, 'acme/app', 'v1'), 1);
  assert.equal(tags.protecting(admin, 'acme/app', 'v1'), 1, 'claims bind everyone the entry names');
  assert.deepEqual(tags.claimPaths(), ['ref_protected']);
});
