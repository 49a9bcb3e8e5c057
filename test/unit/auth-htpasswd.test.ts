import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import bcrypt from 'bcryptjs';
import { NEEDS_APACHE_HTPASSWD } from '../harness/apache.js';
import {
  bcryptCost,
  findHtpasswdHash,
  formatHtpasswdLine,
  isBcryptHash,
  parseHtpasswd,
  removeHtpasswdEntry,
  setHtpasswdEntry,
  toApacheBcrypt,
  usernameProblem,
} from '../../src/auth/htpasswd.js';

/** A line written by Apache's own tool. */
function apacheLine(user: string, password: string, cost = 5): string {
  return execFileSync('htpasswd', ['-nbB', '-C', String(cost), user, password], { encoding: 'utf8' }).trim();
}

test('bcrypt lines from the real `htpasswd -B` load and verify with bcryptjs', NEEDS_APACHE_HTPASSWD, () => {
  const text = `${apacheLine('alice', 'wonderland')}\n${apacheLine('bob', 'builder', 6)}\n`;
  const { users, skipped } = parseHtpasswd(text);
  assert.deepEqual(skipped, []);
  assert.deepEqual([...users.keys()], ['alice', 'bob']);
  assert.match(users.get('alice')!, /^\$2y\$05\$/);
  assert.equal(bcryptCost(users.get('bob')!), 6);
  assert.equal(bcrypt.compareSync('wonderland', users.get('alice')!), true);
  assert.equal(bcrypt.compareSync('wrong', users.get('alice')!), false);
});

test('$2a$, $2b$ and $2y$ of any cost are accepted', () => {
  const b = bcrypt.hashSync('pw', 4);
  const text = [`one:${b}`, `two:${b.replace('$2b$', '$2a$')}`, `three:${b.replace('$2b$', '$2y$')}`, `four:${bcrypt.hashSync('pw', 13 - 8)}`].join('\n');
  const { users, skipped } = parseHtpasswd(text);
  assert.equal(users.size, 4);
  assert.deepEqual(skipped, []);
});

test('other formats are skipped with line number and user, never the hash', () => {
  const text = [
    '# registry users',
    '',
    `good:${bcrypt.hashSync('pw', 4)}`,
    'md5user:$apr1$abcdefgh$0123456789012345678901',
    'shauser:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=',
    'cryptuser:abJnggxhB/yWI',
    'plainuser:hunter2',
    'sha512user:$6$salt$hash',
    'a-pasted-password-without-colon',
    ':$2y$05$abcdefghijklmnopqrstuuZ8c8dQYqKx0s2pC7bOe3tG2Yb5z1aQy',
    'broken:$2y$05$short',
  ].join('\n');
  const { users, skipped } = parseHtpasswd(text);
  assert.deepEqual([...users.keys()], ['good']);
  assert.deepEqual(
    skipped.map((s) => [s.line, s.user]),
    [
      [4, 'md5user'],
      [5, 'shauser'],
      [6, 'cryptuser'],
      [7, 'plainuser'],
      [8, 'sha512user'],
      [9, ''],
      [10, ''],
      [11, 'broken'],
    ],
  );
  assert.match(skipped[0]!.reason, /MD5/);
  assert.match(skipped[1]!.reason, /SHA-1/);
  assert.match(skipped[2]!.reason, /DES/);
  assert.match(skipped[3]!.reason, /plain text/);
  assert.match(skipped[7]!.reason, /malformed bcrypt/);
  for (const s of skipped) assert.doesNotMatch(s.reason, /hunter2|apr1\$abc|W6ph5/);
});

test('CRLF line endings and surrounding blanks are tolerated', () => {
  const hash = bcrypt.hashSync('pw', 4);
  const { users, skipped } = parseHtpasswd(`# c\r\nalice:${hash}\r\n\r\n  bob:${hash}  \r\n`);
  assert.deepEqual(skipped, []);
  assert.equal(users.get('alice'), hash);
  assert.equal(users.get('bob'), hash);
});

test('a duplicate user: the first line wins (as in Apache), the later one is reported', () => {
  const h1 = bcrypt.hashSync('one', 4);
  const h2 = bcrypt.hashSync('two', 4);
  const { users, skipped } = parseHtpasswd(`alice:${h1}\nalice:${h2}\n`);
  assert.equal(users.get('alice'), h1);
  assert.deepEqual(skipped.map((s) => [s.line, s.user]), [[2, 'alice']]);
  assert.match(skipped[0]!.reason, /line 1/);
});

test('isBcryptHash rejects costs out of range and wrong lengths', () => {
  const hash = bcrypt.hashSync('pw', 4);
  assert.equal(isBcryptHash(hash), true);
  assert.equal(isBcryptHash(hash.replace('$04$', '$03$')), false);
  assert.equal(isBcryptHash(hash.replace('$04$', '$32$')), false);
  assert.equal(isBcryptHash(hash + 'x'), false);
  assert.equal(isBcryptHash(hash.replace('$2b$', '$2x$')), false);
});

test('toApacheBcrypt rewrites bcryptjs $2b$ to $2y$ and the hash still verifies', () => {
  const hash = toApacheBcrypt(bcrypt.hashSync('pw', 4));
  assert.match(hash, /^\$2y\$04\$/);
  assert.equal(bcrypt.compareSync('pw', hash), true);
});

test('setHtpasswdEntry replaces in place and keeps every other line byte for byte', () => {
  const original = ['# header comment', 'md5user:$apr1$abcdefgh$0123456789012345678901', 'alice:OLD', 'bob:KEEP', 'alice:DUPLICATE', ''].join('\n');
  const { text, replaced } = setHtpasswdEntry(original, 'alice', 'NEW');
  assert.equal(replaced, true);
  assert.equal(text, ['# header comment', 'md5user:$apr1$abcdefgh$0123456789012345678901', 'alice:NEW', 'bob:KEEP', ''].join('\n'));

  const appended = setHtpasswdEntry('bob:KEEP', 'carol', 'H');
  assert.equal(appended.replaced, false);
  assert.equal(appended.text, 'bob:KEEP\ncarol:H\n');
  assert.equal(setHtpasswdEntry('', 'carol', 'H').text, 'carol:H\n');
});

test('editing a CRLF file keeps CRLF', () => {
  assert.equal(setHtpasswdEntry('bob:X\r\n', 'carol', 'H').text, 'bob:X\r\ncarol:H\r\n');
});

test('removeHtpasswdEntry removes every line of the user and reports whether it did', () => {
  assert.deepEqual(removeHtpasswdEntry('a:1\nb:2\na:3\n', 'a'), { text: 'b:2\n', removed: true });
  assert.deepEqual(removeHtpasswdEntry('a:1\n', 'zz'), { text: 'a:1\n', removed: false });
  assert.deepEqual(removeHtpasswdEntry('# only a:1\n', 'a'), { text: '# only a:1\n', removed: false });
});

test('findHtpasswdHash returns the first entry whatever its format', () => {
  assert.equal(findHtpasswdHash('x:{SHA}abc\nx:second\n', 'x'), '{SHA}abc');
  assert.equal(findHtpasswdHash('x:1\n', 'y'), null);
});

test('user names that would break the file are refused', () => {
  assert.equal(usernameProblem('alice'), null);
  assert.equal(usernameProblem('ci.bot-01@example.com'), null);
  for (const bad of ['', 'a:b', 'a\nb', '#root', ' alice', 'x'.repeat(256)]) {
    assert.notEqual(usernameProblem(bad), null, JSON.stringify(bad));
    assert.throws(() => formatHtpasswdLine(bad, 'h'));
  }
});
