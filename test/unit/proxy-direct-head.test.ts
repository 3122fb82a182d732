import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  INCOMPLETE,
  MAX_DIRECT_BODY_BYTES,
  MAX_HEAD_BYTES,
  NOT_DIRECT,
  readRequestHead,
  type DirectRequestHead,
} from '../../src/proxy/direct/request-head.ts';

function read(text: string, start = 0) {
  return readRequestHead(Buffer.from(text, 'latin1'), start);
}

function direct(text: string): DirectRequestHead {
  const head = read(text);
  assert.ok(typeof head === 'object', `expected a direct head for ${JSON.stringify(text)}`);
  return head;
}

describe('direct path request head', () => {
  it('reads method, target and headers as sent', () => {
    const text = 'GET /api/x%2Fy?q=1 HTTP/1.1\r\nHost: app.test\r\nX-Custom:  a b \r\n\r\n';
    const head = direct(text);

    assert.equal(head.method, 'GET');
    assert.equal(head.url, '/api/x%2Fy?q=1');
    assert.deepEqual(head.rawHeaders, ['Host', 'app.test', 'X-Custom', 'a b']);
    assert.equal(head.close, false);
    assert.equal(head.end, text.length);
  });

  it('reads a head after earlier bytes and leaves the next request in place', () => {
    const first = 'GET /a HTTP/1.1\r\nHost: a\r\n\r\n';
    const second = 'HEAD /b HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n';
    const buffer = Buffer.from(first + second, 'latin1');

    const head = readRequestHead(buffer, first.length);
    assert.ok(typeof head === 'object');
    assert.equal(head.method, 'HEAD');
    assert.equal(head.url, '/b');
    assert.equal(head.close, true);
    assert.equal(head.end, buffer.length);
  });

  it('waits for the rest of a head', () => {
    assert.equal(read('GET / HTTP/1.1\r\nHost: a\r\n'), INCOMPLETE);
    assert.equal(read(''), INCOMPLETE);
  });

  it('keeps header values in Latin-1, byte for byte', () => {
    const head = direct('GET / HTTP/1.1\r\nHost: a\r\nX-Name: caf\xe9\r\n\r\n');
    assert.equal(head.rawHeaders[3], 'caf\xe9');
  });

  it('reads Connection: close among other tokens', () => {
    assert.equal(direct('GET / HTTP/1.1\r\nConnection: TE, Close\r\n\r\n').close, true);
    assert.equal(direct('GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n').close, false);
  });

  it('accepts a Content-Length of 0', () => {
    assert.deepEqual(direct('DELETE /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n').rawHeaders, [
      'Content-Length',
      '0',
    ]);
  });

  it('reads the body length of a small body', () => {
    const head = direct('POST /form HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello');

    assert.equal(head.method, 'POST');
    assert.equal(head.bodyLength, 5);
    assert.equal(head.end, 'POST /form HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n'.length);
    assert.equal(
      direct(`PUT / HTTP/1.1\r\nContent-Length: ${MAX_DIRECT_BODY_BYTES}\r\n\r\n`).bodyLength,
      MAX_DIRECT_BODY_BYTES,
    );
  });

  it('reads a POST without Content-Length as bodyless', () => {
    const head = direct('POST / HTTP/1.1\r\nHost: a\r\n\r\n');
    assert.equal(head.bodyLength, 0);
    assert.equal(head.hasLength, false);
  });

  const leftToNode: [string, string][] = [
    ['a chunked body', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
    [
      'a body over the direct limit',
      `POST / HTTP/1.1\r\nContent-Length: ${MAX_DIRECT_BODY_BYTES + 1}\r\n\r\n`,
    ],
    [
      'a second Content-Length',
      'POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n',
    ],
    ['a signed Content-Length', 'POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n'],
    ['a Content-Length list', 'POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n'],
    ['an empty Content-Length', 'POST / HTTP/1.1\r\nContent-Length:\r\n\r\n'],
    ['a long Content-Length', 'POST / HTTP/1.1\r\nContent-Length: 000001\r\n\r\n'],
    ['CONNECT', 'CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['HTTP/1.0', 'GET / HTTP/1.0\r\nHost: a\r\n\r\n'],
    ['HTTP/2 preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'],
    ['an upgrade', 'GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'],
    ['Expect', 'GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n'],
    ['a folded line', 'GET / HTTP/1.1\r\nX-A: 1\r\n 2\r\n\r\n'],
    ['a space before the colon', 'GET / HTTP/1.1\r\nHost : a\r\n\r\n'],
    ['a line without a colon', 'GET / HTTP/1.1\r\nHost\r\n\r\n'],
    ['an empty name', 'GET / HTTP/1.1\r\n: a\r\n\r\n'],
    ['a bare LF in a value', 'GET / HTTP/1.1\r\nX-A: 1\nX-B: 2\r\n\r\n'],
    ['a bare CR in a value', 'GET / HTTP/1.1\r\nX-A: 1\rX-B: 2\r\n\r\n'],
    ['a NUL in a value', 'GET / HTTP/1.1\r\nX-A: a\x00b\r\n\r\n'],
    ['a bare LF ending the request line', 'GET / HTTP/1.1\nHost: a\r\n\r\n'],
    ['a space in the target', 'GET /a b HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['a non-ASCII target', 'GET /caf\xe9 HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['two spaces after the method', 'GET  / HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['a lower-case method', 'get / HTTP/1.1\r\nHost: a\r\n\r\n'],
  ];
  for (const [what, text] of leftToNode) {
    it(`leaves ${what} to Node's server`, () => {
      assert.equal(read(text), NOT_DIRECT);
    });
  }

  it('leaves heads over the size limit to Node, complete or not', () => {
    const long = `GET / HTTP/1.1\r\nX-Big: ${'a'.repeat(MAX_HEAD_BYTES)}\r\n`;
    assert.equal(read(long), NOT_DIRECT, 'incomplete');
    assert.equal(read(`${long}\r\n`), NOT_DIRECT, 'complete');
  });
});
