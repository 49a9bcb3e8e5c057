import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAuthorization, MAX_AUTHORIZATION_LENGTH } from '../../src/auth/credentials.js';

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

test('no header, empty header → none', () => {
  assert.deepEqual(parseAuthorization(undefined), { kind: 'none' });
  assert.deepEqual(parseAuthorization(''), { kind: 'none' });
  assert.deepEqual(parseAuthorization('   '), { kind: 'none' });
});

test('Basic with user and password, scheme case-insensitive', () => {
  for (const scheme of ['Basic', 'basic', 'BASIC', 'bAsIc']) {
    assert.deepEqual(parseAuthorization(`${scheme} ${b64('alice:s3cret')}`), { kind: 'basic', user: 'alice', password: 's3cret' });
  }
});

test('the password may contain colons and unicode; only the first colon splits', () => {
  assert.deepEqual(parseAuthorization(`Basic ${b64('bob:a:b:c€')}`), { kind: 'basic', user: 'bob', password: 'a:b:c€' });
});

test('Basic Og== (podman/skopeo without credentials) is anonymous, not a failed login', () => {
  assert.deepEqual(parseAuthorization('Basic Og=='), { kind: 'none' });
  assert.deepEqual(parseAuthorization('basic Og'), { kind: 'none' });
});

test('empty user with a password is still a (failing) login attempt', () => {
  assert.deepEqual(parseAuthorization(`Basic ${b64(':pw')}`), { kind: 'basic', user: '', password: 'pw' });
});

test('Bearer token', () => {
  assert.deepEqual(parseAuthorization('Bearer abc.def-_.ghi'), { kind: 'bearer', token: 'abc.def-_.ghi' });
  assert.deepEqual(parseAuthorization('bearer abc'), { kind: 'bearer', token: 'abc' });
});

test('hostile or broken input is malformed and never throws', () => {
  const cases = [
    'Basic',
    'Basic ',
    'Basic !!!!',
    'Basic a',
    `Basic ${b64('nocolon')}`,
    `Basic ${Buffer.from([0x61, 0x3a, 0xff, 0xfe]).toString('base64')}`,
    'Basic YWxp Y2U6cHc=',
    'Bearer',
    'Bearer a b',
    'Bearer a"b',
    'Digest username="x"',
    'Negotiate abc',
    'Basic\u0000YWxpY2U6cHc=',
    `Basic ${'A'.repeat(MAX_AUTHORIZATION_LENGTH)}`,
    `Bearer ${'a'.repeat(MAX_AUTHORIZATION_LENGTH + 1)}`,
  ];
  for (const header of cases) {
    assert.deepEqual(parseAuthorization(header), { kind: 'malformed' }, JSON.stringify(header.slice(0, 60)));
  }
});

test('control characters in the user name or password are credentials (a login that fails and is recorded), not a broken header', () => {
  for (const [user, password] of [['al\u0000ice', 'pw'], ['alice', 'pw\r\nX-Evil: 1'], ['a\nb\u001b[31m\u2028', 'x']]) {
    assert.deepEqual(parseAuthorization(`Basic ${b64(`${user}:${password}`)}`), { kind: 'basic', user, password });
  }
});

test('unpadded Basic is accepted (scripts strip the padding)', () => {
  assert.deepEqual(parseAuthorization(`Basic ${b64('al:pw').replace(/=+$/, '')}`), { kind: 'basic', user: 'al', password: 'pw' });
});
