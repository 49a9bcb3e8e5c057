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

/** A node:http front handing every request to the relay: 299 when it goes the general way, 599 with the failure. */
async function startFront(relay: BlobRelay, record: (o: RelayOutcome) => void, prepare: (req: http.IncomingMessage) => void): Promise<{ front: http.Server; frontUrl: string }> {
  const front = http.createServer((req, res) => {
    const outcome: RelayOutcome = {};
    record(outcome);
    prepare(req);
    relay.relay(
      req,
      res,
      outcome,
      () => res.writeHead(299, { 'x-went': 'general way' }).end(),
      (code) => res.writeHead(599, { 'x-failure': code }).end(),
    );
  });
  await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
  return { front, frontUrl: `http://127.0.0.1:${(front.address() as net.AddressInfo).port}` };
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
    ({ front, frontUrl } = await startFront(relay, (o) => outcomes.push(o), (req) => (req.headers['x-forwarded-proto'] = 'https')));
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

describe('upload relay: PATCH and PUT bodies written straight to the registry', () => {
  let registry: http.Server;
  let front: http.Server;
  let frontUrl: string;
  let relay: BlobRelay;
  let connections = 0;
  let outcomes: RelayOutcome[] = [];
  /** What the registry does with an upload request; by default it reads the body and tells what it got. */
  let handle: (req: http.IncomingMessage, res: http.ServerResponse) => void;
  const readAll = (req: http.IncomingMessage): Promise<Buffer> =>
    new Promise((resolve) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => resolve(Buffer.concat(chunks)));
    });
  const tells = (req: http.IncomingMessage, res: http.ServerResponse): void =>
    void readAll(req).then((body) => {
      res.writeHead(req.method === 'PUT' ? 201 : 202, {
        location: '/v2/app/blobs/uploads/u1',
        'x-got': `${body.length} ${sha(body)} ${req.headers['transfer-encoding'] ?? '-'} ${req.headers['content-length'] ?? '-'}`,
        ...(req.method === 'PUT' ? { 'docker-content-digest': `sha256:${'e'.repeat(64)}` } : {}),
        'content-length': '0',
      });
      res.end();
    });

  const send = (method: string, body: Buffer | null, opts: { chunked?: boolean } = {}): Promise<Got> =>
    new Promise((resolve, reject) => {
      const req = http.request(`${frontUrl}/v2/app/blobs/uploads/u1?_state=s`, { method, agent: false, headers: opts.chunked || !body ? {} : { 'content-length': body.length } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), complete: res.complete }));
      });
      req.on('error', reject);
      if (body && opts.chunked) for (let at = 0; at < body.length; at += 100_000) req.write(body.subarray(at, at + 100_000));
      req.end(opts.chunked ? undefined : (body ?? undefined));
    });

  before(async () => {
    registry = http.createServer((req, res) => handle(req, res));
    registry.on('connection', () => (connections += 1));
    await new Promise<void>((r) => registry.listen(0, '127.0.0.1', r));
    relay = createBlobRelay(new URL(`http://127.0.0.1:${(registry.address() as net.AddressInfo).port}`), 2000)!;
    // As prepareUpstreamHeaders does: the client's `Connection: close` is not the registry's business.
    ({ front, frontUrl } = await startFront(relay, (o) => outcomes.push(o), (req) => delete req.headers.connection));
  });

  beforeEach(() => {
    relay.close();
    connections = 0;
    outcomes = [];
    handle = tells;
  });

  after(async () => {
    relay.close();
    front.closeAllConnections();
    registry.closeAllConnections();
    await new Promise((r) => front.close(r));
    await new Promise((r) => registry.close(r));
  });

  test('a body with Content-Length arrives byte for byte, the answer comes back, the connection is reused', async () => {
    for (let i = 0; i < 3; i++) {
      const got = await send('PATCH', BLOB);
      assert.equal(got.status, 202);
      assert.equal(got.headers['x-got'], `${BLOB.length} ${sha(BLOB)} - ${BLOB.length}`);
      assert.equal(got.headers.location, '/v2/app/blobs/uploads/u1');
    }
    assert.equal(connections, 1);
    assert.equal(outcomes[0]!.upstreamStatus, 202);
  });

  test('a chunked body is sent on chunked, with the same bytes', async () => {
    const got = await send('PATCH', BLOB, { chunked: true });
    assert.equal(got.status, 202);
    assert.equal(got.headers['x-got'], `${BLOB.length} ${sha(BLOB)} chunked -`);
    const again = await send('PATCH', BLOB.subarray(0, 10), { chunked: true });
    assert.equal(again.headers['x-got'], `10 ${sha(BLOB.subarray(0, 10))} chunked -`);
    assert.equal(connections, 1);
  });

  test('the final PUT without a body: the digest the registry stored is in the outcome (audit)', async () => {
    const got = await send('PUT', null);
    assert.equal(got.status, 201);
    assert.equal(got.headers['x-got'], `0 ${sha(Buffer.alloc(0))} - 0`);
    assert.equal(outcomes[0]!.contentDigest, `sha256:${'e'.repeat(64)}`);
  });

  test('a registry answering before the body is in: the client gets that answer, and the connection is not used again', async () => {
    handle = (req, res) => {
      if (req.headers['x-early'] === undefined && req.method === 'PATCH' && Number(req.headers['content-length']) > 1000) {
        res.writeHead(416, { 'content-type': 'application/json', 'content-length': '13' }).end('{"errors":[]}');
        return;
      }
      tells(req, res);
    };
    const refused = await send('PATCH', BLOB);
    assert.equal(refused.status, 416);
    assert.equal(refused.body.toString(), '{"errors":[]}');
    const next = await send('PATCH', BLOB.subarray(0, 100));
    assert.equal(next.status, 202);
    assert.equal(next.headers['x-got'], `100 ${sha(BLOB.subarray(0, 100))} - 100`);
    assert.equal(connections, 2);
  });

  test('a client leaving mid-upload ends the upload at the registry', async () => {
    let aborted!: () => void;
    const registrySawIt = new Promise<void>((r) => (aborted = r));
    let started!: () => void;
    const bodyArriving = new Promise<void>((r) => (started = r));
    handle = (req) => {
      req.once('data', () => started());
      req.on('close', () => {
        if (!req.complete) aborted();
      });
      req.resume();
    };
    const req = http.request(`${frontUrl}/v2/app/blobs/uploads/u1`, { method: 'PATCH', agent: false, headers: { 'content-length': 64 * 1024 * 1024 } });
    req.on('error', () => {});
    req.write(BLOB);
    await bodyArriving;
    req.destroy();
    await Promise.race([registrySawIt, sleep(3000).then(() => assert.fail('the registry still waits for the rest of the upload'))]);
  });

  test('bodies of other methods, and framing it cannot pass on as is, go the general way untouched', async () => {
    const post = await new Promise<Got>((resolve, reject) => {
      const req = http.request(`${frontUrl}/v2/app/blobs/uploads/`, { method: 'POST', agent: false, headers: { 'content-length': 3 } }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.alloc(0), complete: true }));
      });
      req.on('error', reject);
      req.end('abc');
    });
    assert.equal(post.headers['x-went'], 'general way');
  });
});
