import { test } from 'node:test';
import assert from 'node:assert/strict';
import { corsAnswer, originProblem } from '../../src/proxy/cors.js';

const UI = 'https://ui.example.com';
const preflight = { origin: UI, 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' };

const cases: [string, string[], string, Record<string, string>, ReturnType<typeof corsAnswer>['kind'], Record<string, string> | null][] = [
  ['no origins configured', [], 'OPTIONS', preflight, 'none', null],
  ['docker, no Origin', [UI], 'GET', {}, 'headers', { vary: 'Origin' }],
  ['a preflight from the UI', [UI], 'OPTIONS', preflight, 'preflight', {
    'access-control-allow-origin': UI, 'access-control-allow-credentials': 'true', vary: 'Origin',
    'access-control-allow-methods': 'HEAD, GET, OPTIONS, DELETE', 'access-control-allow-headers': 'Authorization, Accept, Cache-Control', 'access-control-max-age': '600',
  }],
  ['a GET from the UI', [UI], 'GET', { origin: UI }, 'headers', {
    'access-control-allow-origin': UI, 'access-control-allow-credentials': 'true', vary: 'Origin', 'access-control-expose-headers': 'Docker-Content-Digest',
  }],
  ['"*" names the origin (credentials forbid a literal *)', ['*'], 'GET', { origin: 'http://elsewhere:8080' }, 'headers', {
    'access-control-allow-origin': 'http://elsewhere:8080', 'access-control-allow-credentials': 'true', vary: 'Origin', 'access-control-expose-headers': 'Docker-Content-Digest',
  }],
  ['a GET from another origin: no CORS headers', [UI], 'GET', { origin: 'https://evil.example' }, 'headers', { vary: 'Origin' }],
  ['an OPTIONS without Access-Control-Request-Method is no preflight', [UI], 'OPTIONS', { origin: UI }, 'headers', null],
];

for (const [name, allowed, method, headers, kind, expected] of cases) {
  test(`cors: ${name}`, () => {
    const answer = corsAnswer(allowed, method, headers);
    assert.equal(answer.kind, kind);
    if (expected && 'headers' in answer) assert.deepEqual(answer.headers, expected);
  });
}

test('cors: a preflight from an origin not listed is refused with the reason', () => {
  assert.deepEqual(corsAnswer([UI], 'OPTIONS', { ...preflight, origin: 'https://evil.example' }), { kind: 'refused', reason: 'origin https://evil.example is not in cors.allowedOrigins' });
});

test('cors.allowedOrigins entries must be origins as browsers send them', () => {
  assert.equal(originProblem(UI), null);
  assert.equal(originProblem('http://127.0.0.1:8080'), null);
  assert.equal(originProblem('*'), null);
  assert.match(originProblem('https://ui.example.com/')!, /no path, no trailing slash.*"https:\/\/ui.example.com"/);
  assert.match(originProblem('ui.example.com')!, /not an origin/);
  assert.match(originProblem('ftp://ui.example.com')!, /http:\/\/ or https:\/\//);
});
