import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  clientResponseHeaders,
  emptyRequestHead,
  requestIdOf,
  scanRequestHead,
  upstreamRequestHeaders,
  type ForwardingFacts,
} from '../../src/proxy/headers.ts';
import { peerAddress, TrustedProxies } from '../../src/proxy/trusted.ts';
import { equalsLower, hasToken } from '../../src/proxy/ascii.ts';
import { toClientHeaders } from '../../src/proxy/upstream/response-headers.ts';

const facts: ForwardingFacts = {
  peer: '203.0.113.7',
  trusted: false,
  secure: true,
  host: 'app.example.test',
  reqId: 'req-1',
  upgrade: false,
};

/** All values of a header in a flat list, compared case-insensitively by name. */
function values(headers: string[], name: string): string[] {
  const found: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i]!.toLowerCase() === name) found.push(headers[i + 1]!);
  }
  return found;
}

describe('upstreamRequestHeaders', () => {
  it('replaces forwarding headers from an untrusted client', () => {
    const raw = [
      'Host',
      'app.example.test',
      'X-Forwarded-For',
      '10.0.0.5, 127.0.0.1',
      'X-Real-IP',
      '127.0.0.1',
      'X-Forwarded-Proto',
      'http',
      'X-Forwarded-Host',
      'evil.example.test',
      'Forwarded',
      'for=127.0.0.1',
      'X-Forwarded-Ssl',
      'on',
      'X-Forwarded-Port',
      '443',
      'X-Forwarded-Scheme',
      'https',
      'X_Forwarded_Proto',
      'https',
      'x_forwarded_for',
      '10.0.0.9',
    ];
    const headers = upstreamRequestHeaders(raw, facts);
    assert.deepEqual(values(headers, 'x-forwarded-for'), ['203.0.113.7']);
    assert.deepEqual(values(headers, 'x-real-ip'), ['203.0.113.7']);
    assert.deepEqual(values(headers, 'x-forwarded-proto'), ['https']);
    assert.deepEqual(values(headers, 'x-forwarded-host'), ['app.example.test']);
    assert.deepEqual(values(headers, 'forwarded'), []);
    // Rack and Rails take X-Forwarded-Ssl: on as HTTPS, so a client must not set it.
    assert.deepEqual(values(headers, 'x-forwarded-ssl'), []);
    assert.deepEqual(values(headers, 'x-forwarded-port'), []);
    assert.deepEqual(values(headers, 'x-forwarded-scheme'), []);
    // Django reads X_Forwarded_Proto as X-Forwarded-Proto.
    assert.deepEqual(values(headers, 'x_forwarded_proto'), []);
    assert.deepEqual(values(headers, 'x_forwarded_for'), []);
    assert.deepEqual(values(headers, 'host'), ['app.example.test']);
  });

  it('extends forwarding headers from a trusted proxy', () => {
    const raw = [
      'Host',
      'app.example.test',
      'X-Forwarded-For',
      '198.51.100.1',
      'X-Forwarded-Proto',
      'https',
    ];
    const headers = upstreamRequestHeaders(raw, { ...facts, trusted: true, secure: false });
    assert.deepEqual(values(headers, 'x-forwarded-for'), ['198.51.100.1, 203.0.113.7']);
    assert.deepEqual(values(headers, 'x-forwarded-proto'), ['https']);
  });

  it('sends http as the protocol of a plain connection', () => {
    const headers = upstreamRequestHeaders(['Host', 'a'], { ...facts, secure: false });
    assert.deepEqual(values(headers, 'x-forwarded-proto'), ['http']);
  });

  it('drops hop-by-hop headers and Expect', () => {
    const raw = [
      'Host',
      'a',
      'Connection',
      'keep-alive, X-Secret-Hop',
      'Keep-Alive',
      'timeout=5',
      'Transfer-Encoding',
      'chunked',
      'TE',
      'trailers',
      'Expect',
      '100-continue',
      'Upgrade',
      'h2c',
      'Proxy-Connection',
      'keep-alive',
      'X-Secret-Hop',
      '1',
      'Accept',
      '*/*',
    ];
    const headers = upstreamRequestHeaders(raw, facts);
    for (const name of [
      'connection',
      'keep-alive',
      'transfer-encoding',
      'te',
      'expect',
      'upgrade',
      'proxy-connection',
      'x-secret-hop',
    ]) {
      assert.deepEqual(values(headers, name), [], name);
    }
    assert.deepEqual(values(headers, 'accept'), ['*/*']);
  });

  it('keeps its own forwarding headers when the client names them in Connection', () => {
    const raw = ['Host', 'a', 'Connection', 'X-Forwarded-For, X-Request-Id'];
    const headers = upstreamRequestHeaders(raw, facts);
    assert.deepEqual(values(headers, 'x-forwarded-for'), ['203.0.113.7']);
    assert.deepEqual(values(headers, 'x-request-id'), ['req-1']);
  });

  it('keeps Upgrade and sets Connection for a WebSocket handshake', () => {
    const raw = [
      'Host',
      'a',
      'Connection',
      'keep-alive, Upgrade',
      'Upgrade',
      'websocket',
      'Sec-WebSocket-Key',
      'k',
    ];
    const headers = upstreamRequestHeaders(raw, { ...facts, upgrade: true });
    assert.deepEqual(values(headers, 'upgrade'), ['websocket']);
    assert.deepEqual(values(headers, 'connection'), ['Upgrade']);
    assert.deepEqual(values(headers, 'sec-websocket-key'), ['k']);
  });

  it('forwards one Host and sets the request id', () => {
    const raw = ['Host', 'app.example.test', 'Host', 'b', 'X-Request-Id', 'client-id'];
    const headers = upstreamRequestHeaders(raw, facts);
    assert.deepEqual(values(headers, 'host'), ['app.example.test']);
    assert.deepEqual(values(headers, 'x-request-id'), ['req-1']);
  });
});

describe('clientResponseHeaders', () => {
  it('drops hop-by-hop headers and the upstream request id, adds HSTS', () => {
    const raw = [
      'Content-Type',
      'text/plain',
      'Connection',
      'keep-alive',
      'Keep-Alive',
      'timeout=5',
      'Transfer-Encoding',
      'chunked',
      'X-Request-Id',
      'upstream-id',
      'Set-Cookie',
      'a=1',
      'Set-Cookie',
      'b=2',
    ].map((text) => Buffer.from(text, 'latin1'));
    const headers = clientResponseHeaders(raw, 'req-1', 'max-age=31536000');
    assert.deepEqual(headers, [
      'Content-Type',
      'text/plain',
      'Set-Cookie',
      'a=1',
      'Set-Cookie',
      'b=2',
      'x-request-id',
      'req-1',
      'strict-transport-security',
      'max-age=31536000',
    ]);
  });

  it('drops the headers an upstream names in Connection, on both clients', () => {
    const upstream = [
      'Connection',
      'X-Secret, close',
      'X-Secret',
      's',
      'Content-Length',
      '2',
      'connection',
      'x-other',
      'X-Other',
      'o',
    ];
    const expected = ['Content-Length', '2', 'x-request-id', 'r'];
    const fromUndici = upstream.map((text) => Buffer.from(text, 'latin1'));

    assert.deepEqual(clientResponseHeaders(fromUndici, 'r', undefined), expected);
    assert.deepEqual(toClientHeaders([...upstream], 'r', undefined), expected);
  });

  it('drops Content-Length from a 204 only', () => {
    const upstream = ['Content-Length', '5', 'X-A', 'b'];
    const fromUndici = upstream.map((text) => Buffer.from(text, 'latin1'));

    assert.deepEqual(clientResponseHeaders(fromUndici, 'r', undefined, 204), [
      'X-A',
      'b',
      'x-request-id',
      'r',
    ]);
    assert.deepEqual(toClientHeaders([...upstream], 'r', undefined, 204), [
      'X-A',
      'b',
      'x-request-id',
      'r',
    ]);
    assert.deepEqual(toClientHeaders([...upstream], 'r', undefined, 304), [
      ...upstream,
      'x-request-id',
      'r',
    ]);
  });

  it('keeps bytes above 127 unchanged', () => {
    const raw = [Buffer.from('X-Name'), Buffer.from([0x63, 0xe9])];
    const headers = clientResponseHeaders(raw, 'r', undefined);
    assert.equal(Buffer.from(headers[1]!, 'latin1').toString('hex'), '63e9');
  });
});

describe('scanRequestHead', () => {
  it('counts Host lines and reads body framing', () => {
    const head = scanRequestHead([
      'Host',
      'a',
      'host',
      'b',
      'Content-Length',
      '12',
      'X-Request-Id',
      'abc-1',
    ]);
    assert.equal(head.hostCount, 2);
    assert.equal(head.hostHeader, 'a');
    assert.equal(head.bodyLength, 12);
    assert.equal(head.requestId, 'abc-1');
  });

  it('marks a chunked body and ignores an unsafe request id', () => {
    const head = scanRequestHead(['Transfer-Encoding', 'Chunked', 'X-Request-Id', 'a b\u0001']);
    assert.equal(head.bodyLength, -1);
    assert.equal(head.unsupportedCoding, false);
    assert.equal(head.requestId, undefined);
  });

  it('flags codings other than one chunked', () => {
    const layered = scanRequestHead(['Transfer-Encoding', 'gzip, chunked']);
    const twice = scanRequestHead(['Transfer-Encoding', 'chunked', 'transfer-encoding', 'chunked']);
    assert.equal(layered.unsupportedCoding, true);
    assert.equal(twice.unsupportedCoding, true);
  });
});

describe('requestIdOf', () => {
  it('keeps a valid client id', () => {
    const head = scanRequestHead(['X-Request-Id', 'ci-run-42.7']);
    assert.equal(requestIdOf(head), 'ci-run-42.7');
  });

  it('generates distinct ids with one process prefix', () => {
    const first = requestIdOf(emptyRequestHead());
    const second = requestIdOf(emptyRequestHead());
    assert.match(first, /^[0-9a-f]{16}-\d+$/);
    assert.notEqual(first, second);
    assert.equal(first.split('-')[0], second.split('-')[0]);
  });

  it('generates ids that a downstream edge accepts', () => {
    const id = requestIdOf(emptyRequestHead());
    const head = scanRequestHead(['X-Request-Id', id]);
    assert.equal(head.requestId, id);
  });
});

describe('TrustedProxies', () => {
  it('matches addresses and ranges, IPv4-mapped peers included', () => {
    const trusted = new TrustedProxies(['10.0.0.0/8', '192.0.2.1', 'fd00::/8']);
    assert.equal(trusted.has('10.1.2.3'), true);
    assert.equal(trusted.has('::ffff:10.1.2.3'), true);
    assert.equal(trusted.has('192.0.2.1'), true);
    assert.equal(trusted.has('192.0.2.2'), false);
    assert.equal(trusted.has('fd12::1'), true);
    assert.equal(trusted.has('not-an-ip'), false);
  });

  it('trusts nobody by default', () => {
    assert.equal(new TrustedProxies([]).has('127.0.0.1'), false);
  });

  it('shows IPv4-mapped peers as IPv4', () => {
    assert.equal(peerAddress('::ffff:127.0.0.1'), '127.0.0.1');
    assert.equal(peerAddress('::1'), '::1');
    assert.equal(peerAddress(undefined), '');
  });
});

describe('equalsLower', () => {
  it('matches a header name in any ASCII case and nothing else', () => {
    for (const name of ['x-request-id', 'X-Request-Id', 'X-REQUEST-ID', 'x-rEqUeSt-iD'])
      assert.equal(equalsLower(name, 'x-request-id'), true, name);
    for (const name of [
      'x_request_id',
      'x-request-i',
      'x-request-idd',
      'x-request-1d',
      'y-request-id',
    ])
      assert.equal(equalsLower(name, 'x-request-id'), false, name);
    assert.equal(equalsLower('HOST', 'host'), true);
    assert.equal(equalsLower('ho\u0173t', 'host'), false);
    assert.equal(equalsLower('', ''), true);
  });
});

describe('hasToken', () => {
  it('finds a token in a header list', () => {
    for (const list of ['close', 'CLOSE', 'keep-alive, Close', ' \tclose\xa0 ,x', 'a,,close,'])
      assert.equal(hasToken(list, 'close'), true, list);
    for (const list of ['', 'closed', 'clos', 'keep-alive', 'close-x, y', 'cl ose'])
      assert.equal(hasToken(list, 'close'), false, list);
  });
});
