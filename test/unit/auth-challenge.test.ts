import { test } from 'node:test';
import assert from 'node:assert/strict';
import { basicChallenge, bearerChallenge } from '../../src/auth/challenge.js';
import { registryErrorBody as registryError } from '../../src/registry/errors.js';

test('bearer challenge as docker expects it', () => {
  assert.equal(bearerChallenge({ realm: 'https://reg.example:8443/token', service: 'reg.example:8443' }), 'Bearer realm="https://reg.example:8443/token",service="reg.example:8443"');
  assert.equal(
    bearerChallenge({ realm: 'https://r/token', service: 'r', scope: ['repository:a:pull,push', 'repository:b:pull'], error: 'insufficient_scope' }),
    'Bearer realm="https://r/token",service="r",scope="repository:a:pull,push repository:b:pull",error="insufficient_scope"',
  );
});

test('values are quote-escaped and cannot inject header lines', () => {
  const header = bearerChallenge({ realm: 'https://r/token"x', service: 'a\\b\r\nSet-Cookie: x' });
  assert.equal(header, 'Bearer realm="https://r/token\\"x",service="a\\\\bSet-Cookie: x"');
  assert.doesNotMatch(header, /[\r\n]/);
});

test('basic challenge', () => {
  assert.equal(basicChallenge('Registry realm'), 'Basic realm="Registry realm"');
  assert.equal(basicChallenge('say "hi"'), 'Basic realm="say \\"hi\\""');
});

test('registry error body', () => {
  assert.deepEqual(JSON.parse(registryError('UNAUTHORIZED', 'authentication required')), {
    errors: [{ code: 'UNAUTHORIZED', message: 'authentication required', detail: null }],
  });
  assert.deepEqual(JSON.parse(registryError('DENIED', 'no', [{ type: 'repository', name: 'a', action: 'push' }])).errors[0].detail, [
    { type: 'repository', name: 'a', action: 'push' },
  ]);
});
