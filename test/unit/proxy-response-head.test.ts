import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseResponseHead, type ResponseHead } from '../../src/proxy/response-head.js';

const head = (text: string): ReturnType<typeof parseResponseHead> => parseResponseHead(Buffer.from(text, 'latin1'));

function parsed(text: string): ResponseHead {
  const result = head(text);
  assert.equal(typeof result, 'object', `expected a head, got ${String(result)}`);
  return result as ResponseHead;
}

describe('response head of a blob answer', () => {
  test("distribution's blob answer: status, headers in order, Content-Length framing, keep-alive", () => {
    const text =
      'HTTP/1.1 200 OK\r\nAccept-Ranges: bytes\r\nContent-Length: 1048576\r\nContent-Type: application/octet-stream\r\n' +
      'Docker-Content-Digest: sha256:abc\r\nEtag: "sha256:abc"\r\n\r\nBODY';
    const h = parsed(text);
    assert.equal(h.status, 200);
    assert.equal(h.bodyLength, 1048576);
    assert.equal(h.keepAlive, true);
    assert.equal(h.headLength, text.length - 4);
    assert.deepEqual(h.headers.map(([n]) => n), ['accept-ranges', 'content-length', 'content-type', 'docker-content-digest', 'etag']);
    assert.deepEqual(h.headers[4], ['etag', '"sha256:abc"']);
  });

  test('repeated headers keep every value; equal repeated Content-Length is one length', () => {
    const h = parsed('HTTP/1.1 404 Not Found\r\nLink: <a>\r\nLink: <b>\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\n{}');
    assert.equal(h.status, 404);
    assert.equal(h.bodyLength, 2);
    assert.deepEqual(h.headers.filter(([n]) => n === 'link').map(([, v]) => v), ['<a>', '<b>']);
  });

  test('204 and 304 have no body whatever Content-Length says; a status without reason is fine', () => {
    assert.equal(parsed('HTTP/1.1 304\r\nContent-Length: 99\r\n\r\n').bodyLength, 0);
    assert.equal(parsed('HTTP/1.1 204 No Content\r\n\r\n').bodyLength, 0);
  });

  test('who may keep the connection: HTTP/1.1 unless "close", HTTP/1.0 only with "keep-alive"', () => {
    assert.equal(parsed('HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 0\r\n\r\n').keepAlive, false);
    assert.equal(parsed('HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n').keepAlive, false);
    assert.equal(parsed('HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n').keepAlive, true);
  });

  test('a head without its blank line yet is incomplete, until it is too long to be a registry answer', () => {
    assert.equal(head('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n'), 'incomplete');
    assert.equal(head(`HTTP/1.1 200 OK\r\nX: ${'a'.repeat(40 * 1024)}`), 'unsupported');
  });

  test('anything outside the simple case is unsupported, so it goes the general way', () => {
    const cases = {
      chunked: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n',
      'chunked beside a length': 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n',
      'body until close': 'HTTP/1.1 200 OK\r\nContent-Type: x\r\n\r\n',
      'two lengths': 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n',
      'length list': 'HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n',
      'signed length': 'HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n',
      'interim answer': 'HTTP/1.1 100 Continue\r\n\r\n',
      'HTTP/2 status line': 'HTTP/2 200\r\nContent-Length: 0\r\n\r\n',
      'no status line': 'Content-Length: 0\r\n\r\n',
      'space before colon': 'HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\n',
      'obs-fold': 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: a\r\n b\r\n\r\n',
      'bare LF inside a line': 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: a\nSet-Cookie: b\r\n\r\n',
      'NUL in a value': 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: a\u0000b\r\n\r\n',
      'line without colon': 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\ngarbage\r\n\r\n',
    };
    for (const [what, text] of Object.entries(cases)) assert.equal(head(text), 'unsupported', what);
  });
});
