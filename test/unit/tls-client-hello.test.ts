import assert from 'node:assert/strict';
import net from 'node:net';
import { before, describe, it } from 'node:test';
import tls from 'node:tls';
import { MAX_CLIENT_HELLO, parseClientHello } from '../../src/tls/client-hello.js';

/** The first TLS record a real Node client sends, captured by a raw TCP server that never answers. */
async function captureClientHello(options: tls.ConnectionOptions): Promise<Buffer> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  try {
    return await new Promise<Buffer>((resolve, reject) => {
      server.once('connection', (socket) => {
        let data = Buffer.alloc(0);
        socket.on('data', (chunk: Buffer) => {
          data = Buffer.concat([data, chunk]);
          if (data.length >= 5 && data.length >= 5 + data.readUInt16BE(3)) {
            socket.destroy();
            resolve(data.subarray(0, 5 + data.readUInt16BE(3)));
          }
        });
      });
      const client = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...options });
      client.on('error', () => undefined);
      client.setTimeout(5_000, () => reject(new Error('no ClientHello captured')));
    });
  } finally {
    server.close();
  }
}

/** Re-splits one record's handshake bytes into records of `sizes` bytes, then one record with the rest. */
function refragment(record: Buffer, sizes: number[]): Buffer {
  const body = record.subarray(5);
  const records: Buffer[] = [];
  for (let offset = 0, i = 0; offset < body.length; i++) {
    const size = sizes[i] ?? body.length;
    const fragment = body.subarray(offset, offset + size);
    offset += size;
    const header = Buffer.from([22, 3, 1, 0, 0]);
    header.writeUInt16BE(fragment.length, 3);
    records.push(header, fragment);
  }
  return Buffer.concat(records);
}

describe('parseClientHello on real ClientHellos', () => {
  let acme: Buffer;
  let browserLike: Buffer;
  let bare: Buffer;

  before(async () => {
    acme = await captureClientHello({ servername: 'registry.test', ALPNProtocols: ['acme-tls/1'] });
    browserLike = await captureClientHello({ servername: 'Registry.Example.COM', ALPNProtocols: ['h2', 'http/1.1'] });
    // Node sends no SNI when connecting to an IP address without a servername.
    bare = await captureClientHello({});
  });

  it('reads SNI and ALPN of an ACME TLS-ALPN-01 validation', () => {
    assert.deepEqual(parseClientHello(acme), {
      status: 'complete',
      hello: { serverName: 'registry.test', alpn: ['acme-tls/1'] },
    });
  });

  it('reads several ALPN protocols and lower-cases the server name', () => {
    assert.deepEqual(parseClientHello(browserLike), {
      status: 'complete',
      hello: { serverName: 'registry.example.com', alpn: ['h2', 'http/1.1'] },
    });
  });

  it('copes with a ClientHello without SNI and ALPN', () => {
    assert.deepEqual(parseClientHello(bare), { status: 'complete', hello: { serverName: null, alpn: [] } });
  });

  it('says incomplete for every proper prefix, as when it arrives one byte at a time', () => {
    for (let length = 0; length < acme.length; length++) {
      const result = parseClientHello(acme.subarray(0, length));
      assert.equal(result.status, 'incomplete', `prefix of ${length} bytes`);
      assert.ok(result.status === 'incomplete' && result.needed > length && result.needed <= acme.length);
    }
    assert.equal(parseClientHello(acme).status, 'complete');
  });

  it('asks for the whole record once the record header is in', () => {
    assert.deepEqual(parseClientHello(acme.subarray(0, 3)), { status: 'incomplete', needed: 5 });
    assert.deepEqual(parseClientHello(acme.subarray(0, 20)), { status: 'incomplete', needed: acme.length });
  });

  it('reassembles a ClientHello split over several records, even mid-header', () => {
    for (const sizes of [[1, 1, 1, 1, 1], [3, 3, 3], [100, 100]]) {
      const split = refragment(browserLike, sizes);
      assert.deepEqual(parseClientHello(split), parseClientHello(browserLike), `records of ${sizes.join(', ')} bytes`);
      assert.equal(parseClientHello(split.subarray(0, split.length - 1)).status, 'incomplete');
    }
  });

  it('rejects a ClientHello split over more records than any client uses', () => {
    const split = refragment(browserLike, Array<number>(64).fill(1));
    assert.deepEqual(parseClientHello(split), { status: 'invalid', reason: 'ClientHello split over too many records' });
  });

  it('ignores bytes that follow the ClientHello', () => {
    const withMore = Buffer.concat([acme, Buffer.from([23, 3, 3, 0, 1, 0])]);
    assert.equal(parseClientHello(withMore).status, 'complete');
  });

  it('rejects a handshake message that is not a ClientHello', () => {
    const serverHello = Buffer.from(acme);
    serverHello[5] = 2;
    assert.equal(parseClientHello(serverHello).status, 'invalid');
  });

  it('rejects a ClientHello whose fields overrun its declared length', () => {
    const truncated = Buffer.from(acme);
    // Handshake length 40: the session id, cipher suites… no longer fit.
    truncated.writeUIntBE(40, 6, 3);
    assert.deepEqual(parseClientHello(truncated), { status: 'invalid', reason: 'ClientHello field overruns its length' });
  });

  it('rejects an oversized ClientHello from its header, without waiting for the bytes', () => {
    const huge = Buffer.from(acme.subarray(0, 9));
    huge.writeUIntBE(MAX_CLIENT_HELLO + 1, 6, 3);
    assert.deepEqual(parseClientHello(huge), { status: 'invalid', reason: 'ClientHello too large' });
  });

  it('rejects a record longer than TLS allows', () => {
    assert.deepEqual(parseClientHello(Buffer.from([22, 3, 1, 0xff, 0xff])), { status: 'invalid', reason: 'bad TLS record length' });
  });
});

describe('parseClientHello on garbage', () => {
  it('rejects plain HTTP from the first byte', () => {
    assert.equal(parseClientHello(Buffer.from('G')).status, 'invalid');
    assert.equal(parseClientHello(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')).status, 'invalid');
  });

  it('rejects an unknown record version', () => {
    assert.equal(parseClientHello(Buffer.from([22, 9])).status, 'invalid');
  });

  it('rejects an SSLv2-style hello and empty records', () => {
    assert.equal(parseClientHello(Buffer.from([0x80, 0x2e, 0x01, 0x03, 0x01])).status, 'invalid');
    assert.equal(parseClientHello(Buffer.from([22, 3, 1, 0, 0])).status, 'invalid');
  });

  it('waits on an empty buffer', () => {
    assert.deepEqual(parseClientHello(Buffer.alloc(0)), { status: 'incomplete', needed: 5 });
  });

  it('never throws on random bytes behind a handshake record header', () => {
    for (let i = 0; i < 500; i++) {
      const body = Buffer.from(Array.from({ length: 1 + (i % 300) }, () => Math.floor(Math.random() * 256)));
      const record = Buffer.concat([Buffer.from([22, 3, 1, 0, 0, 1, 0, 0, 0]), body]);
      record.writeUInt16BE(body.length + 4, 3);
      record.writeUIntBE(body.length, 6, 3);
      const result = parseClientHello(record);
      assert.ok(result.status === 'invalid' || result.status === 'complete');
    }
  });
});
