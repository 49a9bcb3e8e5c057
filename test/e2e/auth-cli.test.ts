/**
 * `registry-gate auth test USER`: a login through the configured sources (an htpasswd file and a
 * real slapd), printing which source answered, the directory entry, the groups and the rules
 * that name the identity; the password from stdin, never from argv.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { writeFile } from 'node:fs/promises';
import { runProxyCli } from '../harness/proxy.js';
import { writeHtpasswd } from '../harness/htpasswd.js';
import { directorySource, startSlapd, type Slapd } from '../harness/slapd.js';
import { makeTempDir, removeTempDir } from '../harness/tmp.js';

let slapd: Slapd;
let work: string;
let configFile: string;

before(async () => {
  work = await makeTempDir('auth-cli');
  slapd = await startSlapd({ people: { alice: 'alice-dir-pw' }, groups: { 'team-a': ['alice'], developers: ['group:team-a'] } });
  await writeHtpasswd(path.join(work, 'htpasswd'), { robot: 'robot-pw' });
  configFile = path.join(work, 'proxy.config.json');
  await writeFile(
    configFile,
    JSON.stringify({
      auth: {
        mode: 'private',
        sources: [
          { type: 'htpasswd', file: './htpasswd' },
          directorySource(slapd),
        ],
      },
      access: [
        { who: ['group:developers'], repositories: ['team-a/**'], actions: ['pull', 'push'] },
        { who: ['user:robot'], repositories: ['ci/**'], actions: ['push', 'pull'] },
      ],
      stateDir: './data',
    }),
  );
});

after(async () => {
  await slapd?.stop();
  if (work) await removeTempDir(work);
});

const authTest = (user: string, password: string) => runProxyCli(['auth', 'test', user, '--password-stdin', '--config', configFile], { stdin: `${password}\n`, redact: [password] });

test('a directory user: the source, the entry, the groups (nested), the rules that name them', async () => {
  const res = await authTest('alice', 'alice-dir-pw');
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stdout, /^logged in: "alice" by source "ldap" \(uid=alice,ou=people,dc=example,dc=org\)$/m);
  assert.match(res.stdout, /groups: developers, team-a; from the source: developers, team-a/);
  assert.match(res.stdout, /^    1\. group:developers → team-a\/\*\* : pull, push$/m);
  assert.doesNotMatch(res.stdout, /user:robot/);
});

test('an htpasswd user; a wrong password and an unknown name are refused with exit 1', async () => {
  const robot = await authTest('robot', 'robot-pw');
  assert.equal(robot.code, 0, robot.stderr);
  assert.match(robot.stdout, /^logged in: "robot" by source "htpasswd"$/m);
  for (const [user, password] of [['alice', 'wrong'], ['nobody', 'x']] as const) {
    const refused = await authTest(user, password);
    assert.equal(refused.code, 1);
    assert.match(refused.stdout, /^refused: invalid username or password$/m);
  }
});
