/**
 * Failed-login limits against real clients: a guessing loop is slowed to a trickle and answered
 * 429 with Retry-After, while another client's docker login goes through at once; a burst of
 * wrong passwords from one address cannot crowd others out of the password checks; docker, podman
 * and skopeo print the 429 message.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startDockerd, type Dockerd } from '../harness/dockerd.js';
import { addLoopbackName, type LoopbackName } from '../harness/hosts.js';
import { startContainersTool, type ImageTool } from '../harness/image-tools.js';
import { get } from '../harness/registry-client.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { skopeo } from '../harness/skopeo.js';
import { startTlsStack, type TlsStack } from '../harness/stack.js';

const USERS = { alice: 'the-real-one', dan: 'dan-pass', pat: 'pat-pass', sam: 'sam-pass', ann: 'ann-pass', bob: 'bob-pass', cat: 'cat-pass', dee: 'dee-pass' };
const LIMITS = { failuresPerUser: 3, failuresPerClient: 50, windowSeconds: 300, maxBackoffSeconds: 60, checksPerSecondPerUser: 1 };
/** The guessing loop comes through a trusted hop (::1) and names itself with X-Forwarded-For. */
const ATTACKER = '198.51.100.7';
const SPRAYER = '198.51.100.8';

describe('failed-login limits with real clients', () => {
  let dockerd: Dockerd;
  let registry: Registry;
  let stack: TlsStack;
  let hostsEntry: LoopbackName;
  let podman: ImageTool;

  before(async () => {
    hostsEntry = await addLoopbackName();
    [dockerd, registry, podman] = await Promise.all([startDockerd(), startRegistry(), startContainersTool('podman')]);
    stack = await startTlsStack({
      auth: { mode: 'private', challenge: 'token' },
      users: USERS,
      registry,
      hostsEntry,
      // A production cost: the password checks are then the scarce resource a burst fights for.
      cost: 10,
      extra: { trustedProxies: ['::1/128'], loginLimits: LIMITS },
    });
    await dockerd.trustCa(stack.host, stack.caPem);
  });

  after(async () => {
    await podman?.stop();
    await dockerd?.untrustCa(stack?.host ?? '').catch(() => {});
    await dockerd?.stop();
    await stack?.stop();
    await registry?.stop();
    await hostsEntry?.remove();
  });

  const guess = (i: number, path = `/token?service=${encodeURIComponent(stack.host)}`) =>
    get(`${stack.url}${path}`, { ca: stack.caPem, auth: { user: 'alice', pass: `guess-${i}` }, headers: { 'x-forwarded-for': ATTACKER } });

  test('a guessing loop gets 429 with Retry-After and under one real check a second; docker login of the real user meanwhile takes under 2 s', async () => {
    let checks = 0;
    let limited = 0;
    let lastCheckAt = 0;
    let longestRetry = 0;
    let running = true;
    const started = Date.now();
    const loop = (async () => {
      for (let i = 0; running && Date.now() - started < 8_000; i++) {
        const res = await guess(i);
        if (res.status === 401) {
          checks++;
          lastCheckAt = Date.now();
        } else {
          assert.equal(res.status, 429, res.body.toString());
          const body = JSON.parse(res.body.toString()) as { errors: { code: string; message: string }[] };
          assert.equal(body.errors[0]!.code, 'TOOMANYREQUESTS');
          assert.match(body.errors[0]!.message, /too many failed logins for user "alice"/);
          const retry = Number(res.headers['retry-after']);
          assert.ok(retry >= 1, `Retry-After ${String(res.headers['retry-after'])}`);
          longestRetry = Math.max(longestRetry, retry);
          limited++;
        }
      }
    })();

    // Once the loop sits in a back-off of 4 s or more and its last real check is over a second
    // old (the user's pace is then free), the real user logs in from another address.
    while (Date.now() - started < 8_000 && !(longestRetry >= 4 && Date.now() - lastCheckAt > 1_100)) await new Promise((r) => setTimeout(r, 50));
    assert.ok(longestRetry >= 4, `the loop never reached a 4 s back-off (${checks} checks, ${limited} refusals)`);
    const login = await dockerd.login(stack.host, 'alice', USERS.alice, { allowFail: true });
    assert.equal(login.code, 0, login.stderr);
    assert.ok(login.durationMs < 2_000, `docker login took ${login.durationMs} ms`);
    running = false;
    await loop;

    const seconds = (Date.now() - started) / 1000;
    // The first failuresPerUser checks are free; after that the back-off allows 1 + 1 + 1 … at 1, 2, 4 s.
    assert.ok(checks <= LIMITS.failuresPerUser + 3, `${checks} real password checks in ${seconds.toFixed(1)} s`);
    assert.ok((checks - LIMITS.failuresPerUser) / seconds < 1, `${checks} checks in ${seconds.toFixed(1)} s`);
    assert.ok(limited > 10, `${limited} answers of 429`);
    const basic = await guess(9999, '/v2/');
    assert.equal(basic.status, 429, 'the /v2/ Basic path is limited the same way');
    assert.ok(Number(basic.headers['retry-after']) >= 1);
    await dockerd.docker(['logout', stack.host]);
  });

  test('a burst of 200 wrong passwords from one address gets 429 while four other clients\' first logins go through', async () => {
    const token = `/token?service=${encodeURIComponent(stack.host)}`;
    const burst = Array.from({ length: 200 }, (_, i) =>
      get(`${stack.url}${token}`, { ca: stack.caPem, auth: { user: `nobody-${i}`, pass: 'x' }, headers: { 'x-forwarded-for': SPRAYER } }),
    );
    await new Promise((r) => setTimeout(r, 150));
    const firstLogins = await Promise.all(
      (['ann', 'bob', 'cat', 'dee'] as const).map((user, i) =>
        get(`${stack.url}${token}`, { ca: stack.caPem, auth: { user, pass: USERS[user] }, headers: { 'x-forwarded-for': `203.0.113.${i + 1}` } }),
      ),
    );
    const statuses = (await Promise.all(burst)).map((res) => res.status);
    assert.deepEqual(
      firstLogins.map((res) => res.status),
      [200, 200, 200, 200],
      firstLogins.map((res) => res.body.toString()).join('\n'),
    );
    assert.ok(statuses.every((s) => s === 401 || s === 429), `burst statuses ${[...new Set(statuses)].join(', ')}`);
    assert.ok(statuses.filter((s) => s === 429).length >= 50, `only ${statuses.filter((s) => s === 429).length} of 200 got 429`);
  });

  test('docker login prints the 429 message; podman and skopeo say "too many requests"', async () => {
    const clients: [string, string, (pass: string) => Promise<{ code: number | null; stderr: string; stdout: string }>][] = [
      ['docker', 'dan', (pass) => dockerd.login(stack.host, 'dan', pass, { allowFail: true })],
      ['podman', 'pat', (pass) => podman.login!(stack.host, { user: 'pat', pass }, stack.certDir)],
      ['skopeo', 'sam', (pass) => skopeo(['login', '--cert-dir', stack.certDir, '--username', 'sam', '--password-stdin', stack.host], { stdin: pass, timeoutMs: 30_000 })],
    ];
    for (const [client, user, login] of clients) {
      for (let i = 0; i < LIMITS.failuresPerUser; i++) {
        const wrong = await login(`wrong-${i}`);
        assert.notEqual(wrong.code, 0, `${client} logged in with a wrong password`);
      }
      const limited = await login('wrong-again');
      assert.notEqual(limited.code, 0);
      // containers/image (podman, skopeo) turns any 429 into its own sentence and drops the body.
      const expected = client === 'docker' ? new RegExp(`toomanyrequests: too many failed logins for user "${user}"`) : /too many requests to registry/;
      assert.match(`${limited.stderr}${limited.stdout}`, expected, `${client}: ${limited.stderr}`);
    }
  });
});
