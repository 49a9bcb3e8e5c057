/**
 * A thousand uploads that stop sending, from one address, against the real registry: the proxy
 * holds only its per-client share of them, another client's push goes through meanwhile, the
 * stalled bodies are cut after `bodyIdleSeconds`, and the file descriptors of the proxy and the
 * registry return to where they were.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { makeOciImage } from '../harness/oci-image.js';
import type { RunningProxy } from '../harness/proxy.js';
import type { Registry } from '../harness/registry.js';
import { startPlainStack, type PlainStack } from '../harness/stack.js';
import { skopeoCopy } from '../harness/skopeo.js';
import { makeTempDir, removeTempDir } from '../harness/tmp.js';
import { openFds, raceTimeout } from '../harness/process.js';

const STALLED = 1_000;
const PER_CLIENT = 512;
const BODY_IDLE_S = 8;
/** Sockets a proxy or registry may keep beyond its start: a few pooled keep-alive connections. */
const FD_SLACK = 8;

type Stall = { socket: net.Socket; held: boolean; closed: Promise<void> };

/**
 * From 127.0.0.2: starts an upload, sends the PATCH head and one chunk, then nothing. `held` is
 * true when the proxy forwarded the upload start (it accepted the connection).
 */
function stallAnUpload(port: number): Promise<Stall> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress: '127.0.0.2' });
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    let head = '';
    const refused = (): void => resolve({ socket, held: false, closed });
    socket.on('error', () => {});
    socket.once('close', refused);
    socket.on('connect', () => socket.write('POST /v2/stall/blobs/uploads/ HTTP/1.1\r\nHost: stall\r\nContent-Length: 0\r\n\r\n'));
    socket.on('data', (chunk: Buffer) => {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.removeAllListeners('data');
      socket.off('close', refused);
      const location = /^location: *(.+)$/im.exec(head)?.[1]?.trim();
      if (!head.startsWith('HTTP/1.1 202') || !location) {
        socket.destroy();
        return resolve({ socket, held: false, closed });
      }
      const target = new URL(location, 'http://stall');
      socket.write(`PATCH ${target.pathname}${target.search} HTTP/1.1\r\nHost: stall\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n`);
      resolve({ socket, held: true, closed });
    });
  });
}

describe('a thousand stalled uploads from one client', () => {
  let stack: PlainStack;
  let registry: Registry;
  let proxy: RunningProxy;
  let work: string;

  before(async () => {
    work = await makeTempDir('slow-clients');
    stack = await startPlainStack({ config: { limits: { bodyIdleSeconds: BODY_IDLE_S, maxConnectionsPerClient: PER_CLIENT } } });
    ({ registry, proxy } = stack);
  });

  after(async () => {
    await stack?.stop();
    if (work) await removeTempDir(work);
  });

  test(`${STALLED} stalled bodies: ${PER_CLIENT} held, the rest refused; another client pushes meanwhile; after ${BODY_IDLE_S} s all are cut and the descriptors are back`, async () => {
    const image = await makeOciImage(`${work}/image`, { layers: 2 });
    const baseline = { proxy: openFds(proxy.pid), registry: openFds(registry.process.pid) };

    const stalls: Stall[] = [];
    for (let i = 0; i < STALLED; i += 100) stalls.push(...(await Promise.all(Array.from({ length: 100 }, () => stallAnUpload(proxy.port)))));
    const held = stalls.filter((s) => s.held);
    assert.equal(held.length, PER_CLIENT, `${held.length} of ${STALLED} stalled uploads were let in`);
    const during = openFds(proxy.pid);
    assert.ok(during >= baseline.proxy + PER_CLIENT, `the proxy holds ${during} descriptors (baseline ${baseline.proxy})`);

    const pushed = await skopeoCopy(image.ociRef, `docker://${proxy.host}/legit/app:v1`, { tlsVerify: false, timeoutMs: 60_000 });
    assert.equal(pushed.digest, image.manifestDigest);
    assert.ok(held.every((s) => !s.socket.destroyed), 'a stalled upload was cut before bodyIdleSeconds');

    const cut = await raceTimeout(Promise.all(held.map((s) => s.closed)), (BODY_IDLE_S + 10) * 1000);
    assert.notEqual(cut, 'timeout', `stalled uploads still open ${BODY_IDLE_S + 10} s later`);
    const cutLogged = () => proxy.logs().filter((l) => l.msg === 'request' && l.method === 'PATCH' && l.failure === 'CLIENT_BODY_IDLE').length;
    const logged = Date.now() + 5_000;
    while (Date.now() < logged && cutLogged() < PER_CLIENT) await new Promise((r) => setTimeout(r, 100));
    assert.equal(cutLogged(), PER_CLIENT, 'every cut upload is logged as CLIENT_BODY_IDLE');

    const settle = Date.now() + 10_000;
    let now = { proxy: openFds(proxy.pid), registry: openFds(registry.process.pid) };
    while (Date.now() < settle && (now.proxy > baseline.proxy + FD_SLACK || now.registry > baseline.registry + FD_SLACK)) {
      await new Promise((r) => setTimeout(r, 250));
      now = { proxy: openFds(proxy.pid), registry: openFds(registry.process.pid) };
    }
    assert.ok(now.proxy <= baseline.proxy + FD_SLACK, `proxy descriptors ${now.proxy}, baseline ${baseline.proxy}`);
    assert.ok(now.registry <= baseline.registry + FD_SLACK, `registry descriptors ${now.registry}, baseline ${baseline.registry}`);
  });
});
