import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ParsedHead } from '../../src/proxy/upstream/response-head.ts';
import {
  MAX_RESPONSE_HEAD_BYTES,
  ResponseParser,
  type ResponseSink,
} from '../../src/proxy/upstream/response-parser.ts';

/** What one parse run saw: the final head, the body, and how the response ended. */
interface Outcome {
  head: ParsedHead | undefined;
  body: string;
  done: boolean;
  trailingBytes: boolean;
}

/** Feeds `chunks` to a fresh parser; `eof` also signals the end of input after the last one. */
function parse(method: string, chunks: Buffer[], eof = false): Outcome {
  let head: ParsedHead | undefined;
  let body = '';
  const sink: ResponseSink = {
    onResponseHead(parsed) {
      assert.equal(head, undefined, 'a second final head');
      head = parsed;
      return true;
    },
    onResponseBody(chunk) {
      body += chunk.toString('latin1');
      return true;
    },
  };
  const parser = new ResponseParser(sink);
  parser.start(method);
  for (const chunk of chunks) {
    parser.execute(chunk);
    if (parser.done) break;
  }
  if (eof && !parser.done) assert.equal(parser.endOfInput(), true, 'cut response');
  return { head, body, done: parser.done, trailingBytes: parser.trailingBytes };
}

/** Returns every way to split `text` in two, plus one byte per read. */
function splits(text: string): Buffer[][] {
  const bytes = Buffer.from(text, 'latin1');
  const out: Buffer[][] = [[bytes]];
  for (let i = 1; i < bytes.length; i++) out.push([bytes.subarray(0, i), bytes.subarray(i)]);
  out.push([...bytes].map((byte) => Buffer.from([byte])));
  return out;
}

const framings: {
  name: string;
  method?: string;
  text: string;
  status: number;
  body: string;
  keepAlive: boolean;
  eof?: boolean;
}[] = [
  {
    name: 'content-length',
    text: 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\n\r\nhello',
    status: 200,
    body: 'hello',
    keepAlive: true,
  },
  {
    name: 'chunked with extension and trailer',
    text: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 1\r\n\r\n',
    status: 200,
    body: 'hello world',
    keepAlive: true,
  },
  {
    name: 'close-delimited',
    text: 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close',
    status: 200,
    body: 'until close',
    keepAlive: false,
    eof: true,
  },
  {
    name: 'HEAD with a length',
    method: 'HEAD',
    text: 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n',
    status: 200,
    body: '',
    keepAlive: true,
  },
  {
    name: '204',
    text: 'HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n',
    status: 204,
    body: '',
    keepAlive: true,
  },
  {
    name: '304 with a length',
    text: 'HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n',
    status: 304,
    body: '',
    keepAlive: true,
  },
  {
    name: '103 then 200',
    text: 'HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
    status: 200,
    body: 'ok',
    keepAlive: true,
  },
  {
    name: 'HTTP/1.0',
    text: 'HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok',
    status: 200,
    body: 'ok',
    keepAlive: false,
  },
  {
    name: 'Connection: close',
    text: 'HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 0\r\n\r\n',
    status: 200,
    body: '',
    keepAlive: false,
  },
  {
    name: 'empty reason and a repeated equal length',
    text: 'HTTP/1.1 404 \r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\nnot',
    status: 404,
    body: 'not',
    keepAlive: true,
  },
];

describe('upstream response parser framing', () => {
  for (const framing of framings) {
    it(`reads ${framing.name} split at every byte`, () => {
      for (const chunks of splits(framing.text)) {
        const where = chunks.map((chunk) => chunk.length).join('+');
        const outcome = parse(framing.method ?? 'GET', chunks, framing.eof);
        assert.equal(outcome.head?.status, framing.status, where);
        assert.equal(outcome.body, framing.body, where);
        assert.equal(outcome.done, true, where);
        assert.equal(outcome.head?.keepAlive, framing.keepAlive, where);
        assert.equal(outcome.trailingBytes, false, where);
      }
    });
  }

  it('keeps header names, values and order', () => {
    const outcome = parse('GET', [
      Buffer.from(
        'HTTP/1.1 200 OK\r\nX-One:  a b \t\r\nset-cookie: s=1\r\nX-Hi: caf\xe9\xa0\r\nContent-Length: 0\r\n\r\n',
        'latin1',
      ),
    ]);
    assert.deepEqual(outcome.head?.headers, [
      'X-One',
      'a b',
      'set-cookie',
      's=1',
      'X-Hi',
      'caf\xe9\xa0',
      'Content-Length',
      '0',
    ]);
  });

  it('reads the Keep-Alive timeout hint in ms', () => {
    const outcome = parse('GET', [
      Buffer.from('HTTP/1.1 200 OK\r\nKeep-Alive: max=100, timeout=5\r\nContent-Length: 0\r\n\r\n'),
    ]);
    assert.equal(outcome.head?.keepAliveTimeoutMs, 5_000);
  });

  it('reads the status, the version and the framing headers in any case', () => {
    const cases: [string, Partial<ParsedHead>][] = [
      ['HTTP/1.1 204\r\n', { status: 204, keepAlive: true, contentLength: -1 }],
      ['HTTP/1.0 200 OK\r\nContent-Length: 002\r\n', { keepAlive: false, contentLength: 2 }],
      ['HTTP/1.1 299 \tA\xe9\r\nCONTENT-LENGTH: 0\r\n', { status: 299, contentLength: 0 }],
      ['HTTP/1.1 200 OK\r\nconnection: Keep-Alive, \xa0CLOSE \r\n', { keepAlive: false }],
      ['HTTP/1.1 200 OK\r\nConnection: closed, clos, ,\r\n', { keepAlive: true }],
      ['HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n', { chunked: true }],
      ['HTTP/1.1 200 OK\r\nKEEP-ALIVE: Timeout=7\r\n', { keepAliveTimeoutMs: 7_000 }],
    ];
    for (const [head, expected] of cases) {
      const outcome = parse('HEAD', [Buffer.from(`${head}\r\n`, 'latin1')]);
      assert.ok(outcome.head, head);
      for (const [key, value] of Object.entries(expected)) {
        assert.equal(outcome.head[key as keyof ParsedHead], value, `${key} of ${head}`);
      }
    }
  });

  it('flags bytes after the end of the response', () => {
    const outcome = parse('GET', [
      Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA'),
    ]);
    assert.equal(outcome.body, 'ok');
    assert.equal(outcome.trailingBytes, true);
  });

  it('reports a body cut before its length as not ended', () => {
    const parser = new ResponseParser({ onResponseHead: () => true, onResponseBody: () => true });
    parser.start('GET');
    parser.execute(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc'));
    assert.equal(parser.done, false);
    assert.equal(parser.endOfInput(), false);
  });

  it('stops when a callback returns false', () => {
    let bodies = 0;
    const parser = new ResponseParser({
      onResponseHead: () => false,
      onResponseBody: () => {
        bodies++;
        return true;
      },
    });
    parser.start('GET');
    parser.execute(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'));
    assert.equal(bodies, 0);
  });
});

const invalid: [string, string][] = [
  ['bare LF after the status line', 'HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n'],
  ['bare LF ending the head', 'HTTP/1.1 200 OK\r\nContent-Length: 0\n\n'],
  ['bare LF inside a value', 'HTTP/1.1 200 OK\r\nX-A: a\nb\r\nContent-Length: 0\r\n\r\n'],
  ['obs-fold', 'HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n'],
  ['NUL in a value', 'HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 0\r\n\r\n'],
  ['CR in a value', 'HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 0\r\n\r\n'],
  ['control byte in a value', 'HTTP/1.1 200 OK\r\nSet-Cookie: a\x01b\r\nContent-Length: 0\r\n\r\n'],
  ['space before the colon', 'HTTP/1.1 200 OK\r\nCache -Control: x\r\nContent-Length: 0\r\n\r\n'],
  ['DEL in a name', 'HTTP/1.1 200 OK\r\nX-Broken\x7f: 1\r\nContent-Length: 0\r\n\r\n'],
  ['empty name', 'HTTP/1.1 200 OK\r\n: 1\r\nContent-Length: 0\r\n\r\n'],
  ['line without a colon', 'HTTP/1.1 200 OK\r\nX-A\r\nContent-Length: 0\r\n\r\n'],
  [
    'differing Content-Length',
    'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok',
  ],
  ['Content-Length list', 'HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok'],
  ['negative Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n'],
  [
    'Content-Length with Transfer-Encoding',
    'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
  ],
  ['gzip transfer coding', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n'],
  [
    'two Transfer-Encoding lines',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
  ],
  ['HTTP/2 status line', 'HTTP/2 200 OK\r\nContent-Length: 0\r\n\r\n'],
  ['two-digit status', 'HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n'],
  ['status 099', 'HTTP/1.1 099 OK\r\nContent-Length: 0\r\n\r\n'],
  ['four-digit status', 'HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n'],
  ['HTTP/1.2', 'HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n'],
  ['control byte in the reason', 'HTTP/1.1 200 O\x01K\r\nContent-Length: 0\r\n\r\n'],
  ['non-ASCII letter in a name', 'HTTP/1.1 200 OK\r\nX-\xe9: 1\r\nContent-Length: 0\r\n\r\n'],
  ['Content-Length of 16 digits', 'HTTP/1.1 200 OK\r\nContent-Length: 1000000000000000\r\n\r\n'],
  ['Content-Length with a sign', 'HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok'],
  ['missing space after the version', 'HTTP/1.1200 OK\r\nContent-Length: 0\r\n\r\n'],
  ['101 without an upgrade request', 'HTTP/1.1 101 Switching Protocols\r\n\r\n'],
  ['empty line before the status line', '\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'],
  ['malformed chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'],
  [
    'bare LF after a chunk size',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\nok\r\n0\r\n\r\n',
  ],
  [
    'chunk longer than its size',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokk\r\n0\r\n\r\n',
  ],
  [
    'chunk size over 2^53',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n',
  ],
];

describe('upstream response parser rejects', () => {
  for (const [name, text] of invalid) {
    it(`${name}, split at every byte`, () => {
      for (const chunks of splits(text)) {
        const where = chunks.map((chunk) => chunk.length).join('+');
        assert.throws(
          () => parse('GET', chunks),
          { code: 'EDGE_UPSTREAM_INVALID_RESPONSE' },
          `${name} at ${where}`,
        );
      }
    });
  }

  it('a head over the size limit, complete or not', () => {
    const filler = `X-Fill: ${'a'.repeat(MAX_RESPONSE_HEAD_BYTES)}\r\n`;
    const incomplete = Buffer.from(`HTTP/1.1 200 OK\r\n${filler}`);
    const complete = Buffer.from(`HTTP/1.1 200 OK\r\n${filler}\r\n`);
    assert.throws(() => parse('GET', [incomplete]), { message: /head too large/ });
    assert.throws(() => parse('GET', [complete]), { message: /head too large/ });
  });

  it('a head just under the limit is read', () => {
    const start = 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Fill: ';
    const fill = 'a'.repeat(MAX_RESPONSE_HEAD_BYTES - start.length - 4);
    const outcome = parse('GET', [Buffer.from(`${start}${fill}\r\n\r\n`)]);
    assert.equal(outcome.head?.status, 200);
  });
});
