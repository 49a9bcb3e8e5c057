import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AccessRules, rulesForMode, type Caller } from '../../src/access/rules.js';
import { compileGlob, globProblem } from '../../src/access/glob.js';
import { parseHtgroup } from '../../src/access/groups.js';
import { ProtectedTags } from '../../src/access/protected-tags.js';
import type { AccessRuleConfig } from '../../src/config/types.js';

const GROUPS: Record<string, string[]> = { alice: ['team-a'], root: ['admins'], carol: ['team-a', 'team-b'] };
const who = (user: string | null): Caller => ({ user, groups: new Set(user ? (GROUPS[user] ?? []) : []) });

/** The shape from SPEC.md, plus a CI robot and an explicit deny. */
const SPEC_RULES: AccessRuleConfig[] = [
  { who: ['group:admins'], repositories: ['**'], actions: ['*'] },
  { who: ['user:ci-bot'], repositories: ['team-a/app'], actions: ['pull', 'push'] },
  { who: ['*'], repositories: ['team-a/secret/**'], actions: [] },
  { who: ['authenticated'], repositories: ['${user}/**'], actions: ['pull', 'push', 'delete'] },
  { who: ['group:team-a'], repositories: ['team-a/**'], actions: ['pull', 'push'] },
  { who: ['group:team-b'], repositories: ['team-b/*'], actions: ['pull', 'push'] },
  { who: ['*'], repositories: ['public/**'], actions: ['pull'] },
];

test('who × repository × action → decision and deciding rule (first match wins, unmatched is denied)', () => {
  const rules = new AccessRules(SPEC_RULES);
  const table: [string | null, string, string, boolean, number | null][] = [
    // user      repository              action    ok     rule
    ['root', 'team-b/app', 'delete', true, 1],
    ['root', 'anything/at/all', 'push', true, 1],
    ['alice', 'team-a/app', 'push', true, 5],
    ['alice', 'team-a/app', 'delete', false, 5],
    ['alice', 'team-a/deep/er/app', 'pull', true, 5],
    ['alice', 'team-a', 'pull', false, null],
    ['alice', 'alice/tool', 'push', true, 4],
    ['alice', 'alice/tool', 'delete', true, 4],
    ['alice', 'alice', 'push', false, null],
    ['alice', 'bob/tool', 'pull', false, null],
    ['alice', 'team-b/app', 'push', false, null],
    ['alice', 'team-a/secret/x', 'pull', false, 3],
    ['root', 'team-a/secret/x', 'pull', true, 1],
    ['alice', 'public/base', 'pull', true, 7],
    ['alice', 'public/base', 'push', false, 7],
    ['carol', 'team-b/app', 'push', true, 6],
    ['carol', 'team-b/app/sub', 'push', false, null],
    ['ci-bot', 'team-a/app', 'push', true, 2],
    ['ci-bot', 'team-a/other', 'push', false, null],
    [null, 'public/base', 'pull', true, 7],
    [null, 'public/base', 'push', false, 7],
    [null, 'team-a/app', 'pull', false, null],
    [null, 'anonymous/x', 'pull', false, null],
  ];
  for (const [user, repository, action, ok, rule] of table) {
    const decision = rules.decide(who(user), { type: 'repository', name: repository, actions: [action] });
    assert.equal(decision.ok, ok, `${user} ${action} ${repository}`);
    assert.equal(decision.rule, rule, `${user} ${action} ${repository}: rule`);
  }
});

test('allowedActions is asked ∩ granted, in the asked order; "*" grants whatever is asked', () => {
  const rules = new AccessRules(SPEC_RULES);
  const ask = (user: string | null, name: string, actions: string[]) => rules.allowedActions(who(user), { type: 'repository', name, actions });
  assert.deepEqual(ask('alice', 'team-a/app', ['push', 'pull', 'delete']), ['push', 'pull']);
  assert.deepEqual(ask('root', 'x', ['delete', 'pull']), ['delete', 'pull']);
  assert.deepEqual(ask(null, 'public/x', ['pull', 'push']), ['pull']);
  assert.deepEqual(ask('alice', 'team-b/app', ['pull']), []);
  assert.deepEqual(rules.allowedActions(who('root'), { type: 'registry', name: 'catalog', actions: ['*'] }), []);
});

test('"*" on "**" as the first rule naming the caller: may do everything (unclassifiable requests too)', () => {
  const rules = new AccessRules(SPEC_RULES);
  assert.equal(rules.mayDoEverything(who('root')), true);
  assert.equal(rules.mayDoEverything(who('alice')), false);
  assert.equal(rules.mayDoEverything(who(null)), false);
  // Shadowed by an earlier, narrower rule that names the caller: not everything.
  const shadowed = new AccessRules([{ who: ['user:bob'], repositories: ['x/**'], actions: ['pull'] }, { who: ['*'], repositories: ['**'], actions: ['*'] }]);
  assert.equal(shadowed.mayDoEverything(who('bob')), false);
  assert.equal(shadowed.mayDoEverything(who('eve')), true);
  // Pull on everything (the catalog needs no filtering) is not everything.
  const readers = new AccessRules(rulesForMode('read-public'));
  assert.equal(readers.mayPullEverything(who(null)), true);
  assert.equal(readers.mayDoEverything(who(null)), false);
  assert.equal(rules.mayPullEverything(who('alice')), false);
  assert.equal(rules.mayPullEverything(who('root')), true);
});

test('without access, each auth mode keeps its meaning', () => {
  const decide = (mode: 'private' | 'read-public' | 'none', user: string | null, action: string) =>
    new AccessRules(rulesForMode(mode)).decide(who(user), { type: 'repository', name: 'team/app', actions: [action] }).ok;
  for (const action of ['pull', 'push', 'delete']) {
    assert.equal(decide('private', 'alice', action), true);
    assert.equal(decide('private', null, action), false);
    assert.equal(decide('read-public', 'alice', action), true);
    assert.equal(decide('read-public', null, action), action === 'pull');
    assert.equal(decide('none', null, action), true);
  }
  assert.equal(new AccessRules(rulesForMode('private')).mayDoEverything(who('alice')), true);
  assert.equal(new AccessRules(rulesForMode('read-public')).mayDoEverything(who(null)), false);
});

test('the index never changes a decision: the same answers as a plain scan, over many names', () => {
  const rules = new AccessRules(SPEC_RULES);
  const scan = (caller: Caller, name: string): number | null => {
    for (let i = 0; i < SPEC_RULES.length; i++) {
      const rule = SPEC_RULES[i]!;
      const named = rule.who.some((s) => s === '*' || (s === 'anonymous' && caller.user === null) || (caller.user !== null && (s === 'authenticated' || s === `user:${caller.user}` || caller.groups.has(s.slice(6)))));
      if (named && rule.repositories.some((g) => compileGlob(g).matches(name, caller))) return i + 1;
    }
    return null;
  };
  const names = ['a', 'alice', 'alice/x', 'team-a/app', 'team-a/secret/y', 'team-b/app', 'team-b/a/b', 'public', 'public/x/y', 'carol/c', 'ci-bot/x'];
  for (const user of [null, 'alice', 'root', 'carol', 'ci-bot', 'dave']) {
    for (const name of names) assert.equal(rules.grant(who(user), name).rule, scan(who(user), name), `${user} ${name}`);
  }
});

test('globs: * within a component, ** across, ${user} one component, the rest literal', () => {
  const cases: [string, string, string | null, boolean][] = [
    ['**', 'a/b/c', null, true],
    ['team-a/**', 'team-a/x', null, true],
    ['team-a/**', 'team-a', null, false],
    ['team-a/**', 'team-ab/x', null, false],
    ['team-*/app', 'team-x/app', null, true],
    ['team-*/app', 'team-x/y/app', null, false],
    ['*/base', 'x/base', null, true],
    ['a.b', 'axb', null, false],
    ['${user}/**', 'alice/x', 'alice', true],
    ['${user}/**', 'alice/x', 'bob', false],
    ['${user}/**', 'alice/x', null, false],
    ['${user}/**', 'al/ice/x', 'al/ice', false],
    ['home/${user}', 'home/alice', 'alice', true],
    // three or more wildcards: matched without a regular expression
    ['**/x*/**', 'a/xy/b', null, true],
    ['**/x*/**', 'a/yx/b', null, false],
    ['*/*/*', 'a/b/c', null, true],
    ['*/*/*', 'a/b', null, false],
    ['*/*/*', 'a/b/c/d', null, false],
    ['${user}/*/**', 'alice/p/q/r', 'alice', true],
    ['${user}/*/**', 'alice/p', 'alice', false],
    ['${user}/*/**', 'bob/p/q', 'alice', false],
    ['**a**a**a**b', 'xaxaxaxb', null, true],
  ];
  for (const [pattern, name, user, expected] of cases) assert.equal(compileGlob(pattern).matches(name, { user }), expected, `${pattern} ~ ${name} (${user})`);
  assert.equal(globProblem('team-a/**', true), null);
  assert.match(globProblem('', true)!, /empty/);
  assert.match(globProblem('a/***', true)!, /\*\*\*/);
  assert.match(globProblem('v*/x', false)!, /"\/"/);
  assert.match(globProblem('$HOME/x', true)!, /\$/);
  assert.match(globProblem('a b', true)!, /only contain/);
  assert.match(globProblem('*a*a*a*a*a*a*a*a*a', true)!, /wildcards/);
});

test('a hostile name against wildcard patterns answers quickly (no catastrophic backtracking)', () => {
  const glob = compileGlob('**a**a**a**a**b');
  const name = 'a'.repeat(250);
  const started = process.hrtime.bigint();
  assert.equal(glob.matches(name, { user: null }), false);
  // Generous bound: exponential matching would take minutes, polynomial takes milliseconds.
  assert.ok(Number(process.hrtime.bigint() - started) / 1e6 < 2000);
});

test('htgroup lines: "group: user user", comments, blank lines; bad lines reported by number', () => {
  const parsed = parseHtgroup('# teams\nteam-a: alice bob\n\nadmins:root\nteam-a: carol\nbroken line\n: nobody\n');
  assert.deepEqual([...parsed.groups], [['team-a', ['alice', 'bob', 'carol']], ['admins', ['root']]]);
  assert.deepEqual(parsed.skipped.map((s) => s.line), [6, 7]);
});

test('protected tags: which protection binds whom, and exemptions', () => {
  const tags = new ProtectedTags([{ repositories: ['**'], tags: ['v*'], who: ['group:admins'] }, { repositories: ['team-a/**'], tags: ['stable'], who: [] }]);
  assert.equal(tags.protecting(who('alice'), 'team-a/app', 'v1'), 1);
  assert.equal(tags.protecting(who('alice'), 'team-a/app', 'latest'), null);
  assert.equal(tags.protecting(who('root'), 'team-a/app', 'v1'), null);
  assert.equal(tags.protecting(who('root'), 'team-a/app', 'stable'), 2);
  assert.equal(tags.protecting(who('alice'), 'team-b/app', 'stable'), null);
  assert.equal(tags.guardsAny(who('root'), 'team-b/app'), false);
  assert.equal(tags.guardsAny(who('alice'), 'team-b/app'), true);
});
