/**
 * /metrics on its own listener after a real docker push and pull and failed logins: the
 * requests, the bytes and the auth outcomes are there, with no repository or user as a label.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startDockerd, type Dockerd } from '../harness/dockerd.js';
import { makeOciImage, toDockerArchive, type OciImage } from '../harness/oci-image.js';
import { freePort } from '../harness/ports.js';
import { get } from '../harness/registry-client.js';
import { startPlainStack, type PlainStack } from '../harness/stack.js';
import { makeTempDir, removeTempDir } from '../harness/tmp.js';

const ALICE = { user: 'alice', pass: 'wonderland' };

/** The value of one sample line (`name{labels} value`), or null when absent. */
function sample(text: string, series: string): number | null {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? null : Number(line.slice(series.length + 1));
}

describe('Prometheus metrics', () => {
  let stack: PlainStack;
  let metricsUrl: string;
  let work: string;
  let image: OciImage;
  let dockerd: Dockerd;
  let localRef: string;

  before(async () => {
    work = await makeTempDir('metrics');
    const port = await freePort();
    metricsUrl = `http://127.0.0.1:${port}/metrics`;
    [stack, image] = await Promise.all([
      startPlainStack({ users: { [ALICE.user]: ALICE.pass }, config: { metrics: { listen: `127.0.0.1:${port}` } } }),
      makeOciImage(path.join(work, 'image'), { layerBytes: 512 * 1024 }),
    ]);
    [dockerd, localRef] = await Promise.all([startDockerd(), toDockerArchive(image, path.join(work, 'image.tar'), 'local/metrics:1')]);
    await dockerd.docker(['load', '-i', path.join(work, 'image.tar')]);
  });

  after(async () => {
    await dockerd?.stop();
    await stack?.stop();
    if (work) await removeTempDir(work);
  });

  test('after a push, a pull and failed logins, the families show them', async () => {
    // dockerd speaks plain HTTP to a registry on 127.0.0.0/8 by itself.
    const remote = `${stack.proxy.host}/metrics/app:v1`;
    await dockerd.login(stack.proxy.host, ALICE.user, ALICE.pass);
    await dockerd.docker(['tag', localRef, remote]);
    const pushed = await dockerd.docker(['push', remote], { timeoutMs: 120_000 });
    // docker pushes the image as a schema-2 manifest of its own making: its digest is docker's.
    const digest = /digest: (sha256:[0-9a-f]{64})/.exec(pushed.stdout)?.[1];
    assert.ok(digest, pushed.stdout);
    await dockerd.docker(['rmi', remote, localRef]);
    const pulled = await dockerd.docker(['pull', remote], { timeoutMs: 120_000 });
    assert.match(pulled.stdout, new RegExp(`Digest: ${digest}`));
    const token = `${stack.proxy.url}/token?service=${encodeURIComponent(stack.proxy.host)}`;
    assert.equal((await get(token, { auth: { user: 'alice', pass: 'wrong' } })).status, 401);
    assert.equal((await get(token, { auth: { user: 'mallory', pass: 'x' } })).status, 401);

    await new Promise((r) => setTimeout(r, 300));
    const res = await get(metricsUrl);
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    const text = res.body.toString();

    assert.equal(sample(text, 'registry_gate_requests_total{route="manifest",method="PUT",status="201"}'), 1, 'the push');
    assert.ok((sample(text, 'registry_gate_requests_total{route="manifest",method="GET",status="200"}') ?? 0) >= 1, 'the pull');
    assert.ok((sample(text, 'registry_gate_requests_total{route="upload",method="PUT",status="201"}') ?? 0) >= 2, 'blob commits');
    assert.ok((sample(text, 'registry_gate_received_bytes_total{route="upload"}') ?? 0) >= image.layerSize, 'bytes pushed');
    assert.ok((sample(text, 'registry_gate_sent_bytes_total{route="blob"}') ?? 0) >= image.layerSize, 'bytes pulled');
    assert.equal(sample(text, 'registry_gate_auth_total{outcome="bad_password"}'), 1);
    assert.equal(sample(text, 'registry_gate_auth_total{outcome="unknown_user"}'), 1);
    assert.ok((sample(text, 'registry_gate_auth_total{outcome="ok"}') ?? 0) >= 2);
    assert.ok((sample(text, 'registry_gate_tokens_issued_total') ?? 0) >= 2, 'push and pull each got a token');
    assert.equal(sample(text, 'registry_gate_transfers_in_flight{direction="upload"}'), 0);
    assert.ok((sample(text, 'registry_gate_upstream_duration_seconds_count{route="manifest"}') ?? 0) >= 2);
    assert.ok((sample(text, 'process_resident_memory_bytes') ?? 0) > 0, 'process metrics');
    assert.ok(!text.includes('metrics/app') && !text.includes('alice') && !text.includes('mallory'), 'no repository or user in a label');
  });

  test('the public listener does not serve /metrics', async () => {
    assert.equal((await get(`${stack.proxy.url}/metrics`)).status, 404);
  });
});
