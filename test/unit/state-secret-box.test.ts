import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SealError, SecretBox } from '../../src/state/secret-box.js';

const KEY = 'registry-gate:token-signing-key';

test('sealed values open under the same secret and Redis key; anything else is refused', () => {
  const box = new SecretBox('a'.repeat(32));
  const sealed = box.seal(KEY, 'the secret');
  assert.equal(box.open(KEY, sealed), 'the secret');
  assert.notEqual(box.seal(KEY, 'the secret'), sealed, 'a fresh IV every time');
  assert.ok(!sealed.includes('the secret'));

  const [format, iv, body, tag] = sealed.split(':') as [string, string, string, string];
  const flip = (text: string) => Buffer.from(Buffer.from(text, 'base64url').map((b, i) => (i === 0 ? b ^ 1 : b))).toString('base64url');
  const refused: [string, string, string][] = [
    ['plain, as an older version or an attacker wrote it', KEY, Buffer.alloc(32, 7).toString('base64')],
    ['sealed with another secret', KEY, new SecretBox('b'.repeat(32)).seal(KEY, 'the secret')],
    ['moved from another Redis key', KEY, box.seal('registry-gate:acme:account-key', 'the secret')],
    ['a changed byte', KEY, [format, iv, flip(body), tag].join(':')],
    ['a changed tag', KEY, [format, iv, body, flip(tag)].join(':')],
    ['a tag cut to 4 bytes', KEY, [format, iv, body, Buffer.from(tag, 'base64url').subarray(0, 4).toString('base64url')].join(':')],
    ['an empty string', KEY, ''],
  ];
  for (const [what, key, stored] of refused) assert.throws(() => box.open(key, stored), SealError, what);
});

test('a secret shorter than 32 characters is refused', () => {
  assert.throws(() => new SecretBox('short'), /at least 32/);
});
