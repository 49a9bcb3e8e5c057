import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { createBlobRelay, type BlobRelay, type RelayOutcome } from '../../src/proxy/blob-relay.js';
import { freePort } from '../harness/ports.js';

/**
 * The relay between a node:http front and a raw TCP "registry" whose every byte the test scripts,
 * so that framing, reuse and failure cases happen exactly when the test wants them.
 */

/** What the scripted registry does with the n-th request it reads on one connection (n from 0). */
type Script = (socket: net.Socket, request: string, n: number) => void;

const DIGEST_PATH = `/v2/app/blobs/sha256:${'d'.repeat(64)}`;
const BLOB = randomBytes(3 * 1024 * 1024 + 17);

function answer(socket: net.Socket, head: string, body: Buffer | string = ''): void {
  socket.write(Buffer.concat([Buffer.from(`${head}\r\n\r\n`, 'latin1'), Buffer.isBuffer(body) ? body : Buffer.from(body)]));
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

interface Got {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  complete: boolean;
}

function get(url: string, headers: http.OutgoingHttpHeaders = {}): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      const done = (): void => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), complete: res.complete });
      res.on('end', done);
      res.on('aborted', done);
      res.on('error', done);
    });
    req.on('error', reject);
  });
}

describe('blob relay: the registry side read without node:http', () => {
  let script: Script;
  let connections = 0;
  let requests: string[] = [];
  let registry: net.Server;
  let registryUrl: URL;
  let relay: BlobRelay;
  let front: http.Server;
  let frontUrl: string;
  let outcomes: RelayOutcome[] = [];
  const open = new Set<net.Socket>();

  before(async () => {
    registry = net.createServer((socket) => {
      connections += 1;
      open.add(socket);
      socket.on('close', () => open.delete(socket));
      let pending = '';
      let n = 0;
      socket.on('error', () => {});
      socket.on('data', (d: Buffer) => {
        pending += d.toString('latin1');
        let end: number;
        while ((end = pending.indexOf('\r\n\r\n')) !== -1) {
          const request = pending.slice(0, end + 4);
          pending = pending.slice(end + 4);
          requests.push(request);
          script(socket, request, n++);
        }
      });
    });
    await new Promise<void>((r) => registry.listen(0, '127.0.0.1', r));
    registryUrl = new URL(`http://127.0.0.1:${(registry.address() as net.AddressInfo).port}`);
    relay = createBlobRelay(registryUrl, 1000)!;
    front = http.createServer((req, res) => {
      const outcome: RelayOutcome = {};
      outcomes.push(outcome);
      req.headers['x-forwarded-proto'] = 'https';
      relay.relay(
        req,
        res,
        outcome,
        () => res.writeHead(299, { 'x-went': 'general way' }).end(),
        (code) => res.writeHead(599, { 'x-failure': code }).end(),
      );
    });
    await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
    frontUrl = `http://127.0.0.1:${(front.address() as net.AddressInfo).port}`;
  });

  beforeEach(() => {
    connections = 0;
    requests = [];
    outcomes = [];
    relay.close();
  });

  after(async () => {
    relay.close();
    front.closeAllConnections();
    await new Promise((r) => front.close(r));
    for (const socket of open) socket.destroy();
    await new Promise((r) => registry.close(r));
  });

  test('only a plain-HTTP upstream at the root is taken', () => {
    assert.equal(createBlobRelay(new URL('https://127.0.0.1:5000'), 1000), null);
    assert.equal(createBlobRelay(new URL('http://127.0.0.1:5000/prefix'), 1000), null);
    assert.equal(createBlobRelay(new URL('http://u:p@127.0.0.1:5000'), 1000), null);
    assert.notEqual(createBlobRelay(new URL('http://[::1]:5000'), 1000), null);
  });

  test('the body arrives byte for byte with its headers, hop-by-hop ones dropped; the connection is reused', async () => {
    script = (socket) =>
      answer(
        socket,
        `HTTP/1.1 200 OK\r\nContent-Length: ${BLOB.length}\r\nDocker-Content-Digest: sha256:${sha(BLOB)}\r\nKeep-Alive: timeout=5\r\nLink: <a>\r\nLink: <b>`,
        BLOB,
      );
    for (let i = 0; i < 3; i++) {
      const got = await get(`${frontUrl}${DIGEST_PATH}?ns=x`, { range: 'bytes=0-' });
      assert.equal(got.status, 200);
      assert.equal(got.complete, true);
      assert.equal(sha(got.body), sha(BLOB));
      assert.equal(got.headers['docker-content-digest'], `sha256:${sha(BLOB)}`);
      assert.equal(got.headers.link, '<a>, <b>');
      assert.notEqual(got.headers['keep-alive'], 'timeout=5');
    }
    assert.equal(connections, 1);
    assert.match(requests[0]!, new RegExp(`^GET ${DIGEST_PATH.replace(/\//g, '\\/')}\\?ns=x HTTP/1\\.1\r\n`));
    assert.match(requests[0]!, /\r\nrange: bytes=0-\r\n/);
    assert.match(requests[0]!, /\r\nx-forwarded-proto: https\r\n/);
    assert.equal(outcomes[0]!.upstreamStatus, 200);
  });

  test('a head trickling in byte by byte is still read', async () => {
    script = (socket) => {
      const bytes = Buffer.from(`HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{"errors":[]}`);
      void (async () => {
        for (const b of bytes) {
          socket.write(Buffer.from([b]));
          await sleep(1);
        }
      })();
    };
    const got = await get(`${frontUrl}${DIGEST_PATH}`);
    assert.equal(got.status, 404);
    assert.equal(got.body.toString(), '{"errors":[]}');
  });

  test('a connection the registry closed while idle is replaced, and the download still succeeds', async () => {
    script = (socket, _request, n) => {
      if (n === 0) answer(socket, 'HTTP/1.1 200 OK\r\nContent-Length: 5', 'first');
      else socket.destroy();
    };
    assert.equal((await get(`${frontUrl}${DIGEST_PATH}`)).body.toString(), 'first');
    const got = await get(`${frontUrl}${DIGEST_PATH}`);
    assert.equal(got.status, 200);
    assert.equal(got.body.toString(), 'first');
    assert.equal(connections, 2);
  });

  test('an answer outside the simple case goes the general way, with nothing sent to the client before', async () => {
    for (const head of ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked', 'HTTP/1.1 200 OK\r\nContent-Type: text/plain']) {
      script = (socket) => answer(socket, head, '5\r\nhello\r\n0\r\n\r\n');
      const got = await get(`${frontUrl}${DIGEST_PATH}`);
      assert.equal(got.status, 299, head);
      assert.equal(got.headers['x-went'], 'general way');
    }
    const withBody = await new Promise<number>((resolve, reject) => {
      const req = http.request(`${frontUrl}${DIGEST_PATH}`, { method: 'GET', headers: { 'content-length': '3' }, agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end('abc');
    });
    assert.equal(withBody, 299, 'a GET with a body is not relayed');
  });

  test('bytes beyond Content-Length are not passed on, and that connection is not used again', async () => {
    script = (socket) => answer(socket, 'HTTP/1.1 200 OK\r\nContent-Length: 4', 'blobEXTRA');
    assert.equal((await get(`${frontUrl}${DIGEST_PATH}`)).body.toString(), 'blob');
    assert.equal((await get(`${frontUrl}${DIGEST_PATH}`)).body.toString(), 'blob');
    assert.equal(connections, 2);
  });

  test('Connection: close and HTTP/1.0 answers are not reused', async () => {
    for (const head of ['HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2', 'HTTP/1.0 200 OK\r\nContent-Length: 2']) {
      connections = 0;
      script = (socket) => answer(socket, head, 'ok');
      for (let i = 0; i < 2; i++) assert.equal((await get(`${frontUrl}${DIGEST_PATH}`)).body.toString(), 'ok', head);
      assert.equal(connections, 2, head);
    }
  });

  test('a registry dying mid-body cuts the client off (no silent short body)', async () => {
    script = (socket) => {
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${BLOB.length}\r\n\r\n`);
      socket.end(BLOB.subarray(0, 100_000));
    };
    const got = await get(`${frontUrl}${DIGEST_PATH}`);
    assert.equal(got.status, 200);
    assert.equal(got.complete, false);
    assert.ok(got.body.length < BLOB.length);
    assert.equal(outcomes[0]!.failure, 'ECONNRESET');
  });

  test('a registry that never answers fails with UPSTREAM_TIMEOUT; one that refuses with its errno', async () => {
    script = () => {};
    const silent = await get(`${frontUrl}${DIGEST_PATH}`);
    assert.equal(silent.status, 599);
    assert.equal(silent.headers['x-failure'], 'UPSTREAM_TIMEOUT');

    const dead = createBlobRelay(new URL(`http://127.0.0.1:${await freePort()}`), 1000)!;
    const s = http.createServer((req, res) =>
      dead.relay(req, res, {}, () => res.writeHead(299).end(), (code) => res.writeHead(599, { 'x-failure': code }).end()),
    );
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    try {
      const refused = await get(`http://127.0.0.1:${(s.address() as net.AddressInfo).port}${DIGEST_PATH}`);
      assert.equal(refused.status, 599);
      assert.equal(refused.headers['x-failure'], 'ECONNREFUSED');
    } finally {
      dead.close();
      await new Promise((r) => s.close(r));
    }
  });

  test('a client leaving mid-download closes the registry connection', async () => {
    let closed!: () => void;
    const upstreamClosed = new Promise<void>((r) => (closed = r));
    script = (socket) => {
      socket.on('close', closed);
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${64 * 1024 * 1024}\r\n\r\n`);
      const chunk = Buffer.alloc(1024 * 1024, 1);
      const pump = (): void => {
        while (!socket.destroyed && socket.write(chunk));
      };
      socket.on('drain', pump);
      pump();
    };
    const req = http.get(`${frontUrl}${DIGEST_PATH}`, { agent: false });
    req.on('error', () => {});
    const [res] = (await new Promise((r) => req.once('response', (x) => r([x])))) as [http.IncomingMessage];
    await new Promise((r) => res.once('data', r));
    req.destroy();
    await Promise.race([upstreamClosed, sleep(3000).then(() => assert.fail('the registry connection stayed open'))]);
  });
});
