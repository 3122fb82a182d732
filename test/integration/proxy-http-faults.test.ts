import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { failurePage } from '../../src/proxy/errors.ts';
import {
  connectRaw,
  delay,
  httpsRequest,
  oneSite,
  rawExchange,
  readHead,
  resetSocket,
  startRawUpstream,
  startTestEdge,
  startUpstream,
  statusOf,
  waitUntil,
  type RawUpstream,
  type TestEdge,
  type TestUpstream,
} from '../support/upstreams.ts';

const TLS = { tls: { servername: 'app.example.test' } };

describe('proxy invalid upstream headers', () => {
  let edge: TestEdge;
  let upstream: RawUpstream;
  let reply = '';

  before(async () => {
    upstream = await startRawUpstream((socket) => {
      readHead(socket).then(
        () => socket.end(reply),
        () => socket.destroy(),
      );
    });
    edge = await startTestEdge(oneSite(upstream.origin));
  });

  after(async () => {
    await edge.stop();
    await upstream.close();
  });

  const variants = [
    'Set-Cookie: sid=ab\x01cd; Path=/',
    'Cache -Control: no-cache',
    'X-Broken\x7f: 1',
    'X-Line: a\rb',
  ];
  for (const header of variants) {
    it(`answers 502 or drops ${JSON.stringify(header)}, then keeps serving`, async () => {
      reply = `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n${header}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok`;
      const response = await httpsRequest(edge.httpsPort, { path: '/api/x' });
      if (response.status === 200) {
        assert.equal(response.body, 'ok');
        assert.equal(response.headers['set-cookie'], undefined);
      } else {
        assert.equal(response.status, 502);
      }

      reply = 'HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnext';
      const next = await httpsRequest(edge.httpsPort, { path: '/api/x' });
      assert.equal(next.status, 200);
      assert.equal(next.body, 'next');
    });
  }
});

describe('proxy Expect: 100-continue', () => {
  let edge: TestEdge;
  let upstream: TestUpstream;

  before(async () => {
    upstream = await startUpstream((_req, res, body) => res.end(`got ${body.length}`));
    edge = await startTestEdge(oneSite(upstream.origin));
  });

  after(async () => {
    await edge.stop();
    await upstream.close();
  });

  it('sends exactly one 100 Continue and forwards body and headers', async () => {
    const socket = connectRaw(edge.httpsPort, TLS.tls);
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    socket.write(
      'POST /api/upload/ HTTP/1.1\r\nHost: app.example.test\r\nContent-Type: application/octet-stream\r\nContent-Length: 2048\r\nExpect: 100-continue\r\n\r\n',
    );
    await waitUntil(() => text.includes('\r\n\r\n'), 1_000, '100 Continue');
    assert.equal(text, 'HTTP/1.1 100 Continue\r\n\r\n');

    socket.write(Buffer.alloc(2048));
    await waitUntil(() => text.includes('got 2048'), 2_000, 'final response');
    socket.destroy();

    assert.equal(text.match(/HTTP\/1\.1 100 Continue/g)?.length, 1);
    assert.match(text, /HTTP\/1\.1 200 OK/);
    const received = upstream.requests.at(-1)!;
    assert.equal(received.body.length, 2048);
    assert.equal(received.headers.expect, undefined);
    assert.equal(received.headers['x-forwarded-proto'], 'https');
    assert.equal(received.headers['x-forwarded-for'], '127.0.0.1');
    assert.ok(received.headers['x-request-id']);
  });

  it('answers 413 without 100 Continue when the declared body is too large', async () => {
    const raw = await rawExchange(
      edge.httpsPort,
      `POST /api/upload/ HTTP/1.1\r\nHost: app.example.test\r\nContent-Length: ${20 * 1024 * 1024}\r\nExpect: 100-continue\r\n\r\n`,
      TLS,
    );
    assert.equal(statusOf(raw), 413);
    assert.doesNotMatch(raw, /100 Continue/);
  });
});

describe('proxy silent upstream', () => {
  let edge: TestEdge;
  let upstream: RawUpstream;

  before(async () => {
    // Reads requests and never answers.
    upstream = await startRawUpstream((socket) => socket.resume());
    edge = await startTestEdge({
      sites: [
        {
          name: 'prod',
          hosts: ['app.example.test'],
          routes: [
            { path: '/', upstream: upstream.origin },
            { path: '/slow-timeout', upstream: upstream.origin, timeouts: { upstreamMs: 400 } },
          ],
        },
      ],
    });
  });

  after(async () => {
    await edge.stop();
    await upstream.close();
  });

  it('closes the upstream connection soon after the client resets', async () => {
    const socket = connectRaw(edge.httpsPort, TLS.tls);
    socket.on('error', () => {});
    socket.write('GET /api/slow HTTP/1.1\r\nHost: app.example.test\r\n\r\n');
    await waitUntil(() => upstream.sockets.size === 1, 2_000, 'upstream connection');
    const [upstreamSocket] = upstream.sockets;
    resetSocket(socket);

    await waitUntil(() => upstreamSocket!.destroyed, 1_000, 'upstream connection to close');
    const line = edge.logs
      .filter((entry) => entry.msg === 'request' && entry.path === '/api/slow')
      .at(-1);
    assert.equal(line?.status, 499);
  });

  it('answers 504 once the upstream timeout passes', async () => {
    const started = Date.now();
    const response = await httpsRequest(edge.httpsPort, { path: '/slow-timeout' });
    assert.equal(response.status, 504);
    const elapsedMs = Date.now() - started;
    assert.ok(elapsedMs >= 350, `answered after ${elapsedMs} ms`);
    // The route's own 400 ms applies, not the 60 s default of the route that opened the pool.
    assert.ok(elapsedMs < 10_000, `answered after ${elapsedMs} ms`);
    assert.doesNotMatch(response.body, /UND_ERR|undici|timeout error/i);
  });
});

describe('proxy client abort', () => {
  let edge: TestEdge;
  let upstream: TestUpstream;
  const closedAfterMs: number[] = [];

  before(async () => {
    upstream = await startUpstream((req, res) => {
      const started = Date.now();
      const timer = setTimeout(() => res.end('late'), 3_000);
      res.on('close', () => {
        clearTimeout(timer);
        closedAfterMs.push(Date.now() - started);
      });
    });
    edge = await startTestEdge({
      sites: [
        {
          name: 'prod',
          hosts: ['app.example.test'],
          routes: [
            { path: '/', upstream: upstream.origin, timeouts: { upstreamKeepAliveMs: 300 } },
          ],
        },
      ],
    });
  });

  after(async () => {
    await edge.stop();
    await upstream.close();
  });

  it('cancels the upstream request when the client leaves, every time', async () => {
    const attempts = 20;
    for (let i = 0; i < attempts; i++) {
      const socket = connectRaw(edge.httpsPort, TLS.tls);
      socket.on('error', () => {});
      socket.write('GET /api/slow HTTP/1.1\r\nHost: app.example.test\r\n\r\n');
      await waitUntil(() => upstream.requests.length === i + 1, 2_000, 'upstream request');
      socket.destroy();
    }
    await waitUntil(
      () => closedAfterMs.length === attempts,
      2_000,
      'every upstream request to close',
    );
    assert.ok(
      closedAfterMs.every((ms) => ms < 1_500),
      `close delays: ${closedAfterMs.join(', ')}`,
    );

    // undici may open one spare connection after an abort; it is idle and retired after
    // upstreamKeepAliveMs, so nothing is left once that passed.
    let open = -1;
    for (let i = 0; i < 100 && open !== 0; i++) {
      open = await new Promise<number>((resolve) =>
        upstream.server.getConnections((_error, count) => resolve(count)),
      );
      if (open !== 0) await delay(20);
    }
    assert.equal(open, 0);
  });
});

describe('proxy stale keep-alive sockets', () => {
  it('retries a GET once on a fresh socket when a reused one was closed', async () => {
    // Answers the first request of each connection, then drops the connection when a second
    // request arrives on it: the race of an upstream closing an idle socket.
    const upstream = await startRawUpstream((socket) => {
      let served = 0;
      socket.on('data', (chunk: Buffer) => {
        if (!chunk.includes('\r\n\r\n')) return;
        if (served++ === 0)
          socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nKeep-Alive: timeout=60\r\n\r\nok');
        else socket.destroy();
      });
    });
    const edge = await startTestEdge({
      sites: [
        {
          name: 'prod',
          hosts: ['app.example.test'],
          routes: [{ path: '/', upstream: upstream.origin, maxConnections: 1 }],
        },
      ],
    });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 20; i++)
        statuses.push((await httpsRequest(edge.httpsPort, { path: '/api/ping' })).status);
      assert.deepEqual(statuses, Array(20).fill(200));
    } finally {
      await edge.stop();
      await upstream.close();
    }
  });

  it('gets no 502 from an upstream with a short keep-alive timeout', async () => {
    const upstream = await startUpstream((_req, res) => res.end('pong'));
    upstream.server.keepAliveTimeout = 300;
    const edge = await startTestEdge(oneSite(upstream.origin));
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 10; i++) {
        statuses.push((await httpsRequest(edge.httpsPort, { path: '/api/ping' })).status);
        await delay(300);
      }
      assert.deepEqual(statuses, Array(10).fill(200));
    } finally {
      await edge.stop();
      await upstream.close();
    }
  });

  it('follows an upstream that answers every response with Connection: close', async () => {
    const upstream = await startUpstream((_req, res) => {
      res.setHeader('connection', 'close');
      res.end('pong');
    });
    const edge = await startTestEdge(oneSite(upstream.origin));
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 20; i++)
        statuses.push((await httpsRequest(edge.httpsPort, { path: '/api/ping' })).status);
      assert.deepEqual(statuses, Array(20).fill(200));
    } finally {
      await edge.stop();
      await upstream.close();
    }
  });
});

describe('proxy upstream and request errors', () => {
  let edge: TestEdge;
  let upstream: TestUpstream;
  let resetter: RawUpstream;

  before(async () => {
    upstream = await startUpstream((_req, res, body) => res.end(`got ${body.length}`));
    resetter = await startRawUpstream((socket) => {
      readHead(socket).then(
        () => {
          socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789');
          setTimeout(() => socket.resetAndDestroy(), 50);
        },
        () => socket.destroy(),
      );
    });
    edge = await startTestEdge({
      sites: [
        {
          name: 'prod',
          hosts: ['app.example.test'],
          routes: [
            { path: '/', upstream: upstream.origin, maxBodyBytes: 1024 },
            { path: '/refused', upstream: 'http://127.0.0.1:9' },
            { path: '/reset', upstream: resetter.origin },
          ],
        },
      ],
    });
  });

  after(async () => {
    await edge.stop();
    await upstream.close();
    await resetter.close();
  });

  it('answers 502 with a plain page when the upstream refuses connections', async () => {
    const response = await httpsRequest(edge.httpsPort, { path: '/refused' });
    assert.equal(response.status, 502);
    assert.doesNotMatch(response.body, /ECONNREFUSED|127\.0\.0\.1|undici/);
    assert.equal(edge.logs.filter((entry) => entry.msg === 'upstream request failed').length, 1);
  });

  it('sends HSTS with the 502 page of every upstream client', async () => {
    const bodyless = await httpsRequest(edge.httpsPort, { path: '/refused' });
    const upload = await httpsRequest(edge.httpsPort, {
      method: 'POST',
      path: '/refused',
      body: 'data',
    });

    for (const response of [bodyless, upload]) {
      assert.equal(response.status, 502);
      assert.equal(response.headers['strict-transport-security'], 'max-age=31536000');
    }
  });

  it('answers 413 for a declared body over the route limit without contacting the upstream', async () => {
    const before = upstream.requests.length;
    const response = await httpsRequest(edge.httpsPort, {
      method: 'POST',
      path: '/upload',
      body: Buffer.alloc(2048),
    });
    assert.equal(response.status, 413);
    assert.equal(upstream.requests.length, before);
  });

  it('answers 413 when a chunked body grows past the route limit', async () => {
    const before = upstream.requests.length;
    const raw = await rawExchange(
      edge.httpsPort,
      `POST /upload HTTP/1.1\r\nHost: app.example.test\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n${'a'.repeat(2048)}\r\n0\r\n\r\n`,
      TLS,
    );
    await delay(200);

    assert.equal(statusOf(raw), 413);
    assert.equal(upstream.requests.length, before, 'the upstream received no whole request');
  });

  it('accepts a chunked body within the limit', async () => {
    const raw = await rawExchange(
      edge.httpsPort,
      `POST /upload HTTP/1.1\r\nHost: app.example.test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n200\r\n${'a'.repeat(512)}\r\n0\r\n\r\n`,
      TLS,
    );
    assert.equal(statusOf(raw), 200);
    assert.match(raw, /got 512$/);
  });

  it('rejects a transfer coding other than one chunked', async () => {
    const before = upstream.requests.length;
    // Node's parser itself rejects a repeated chunked with 400; the edge answers the rest.
    const cases: [string, number][] = [
      ['Transfer-Encoding: gzip, chunked\r\n', 501],
      ['Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n', 501],
      ['Transfer-Encoding: chunked, chunked\r\n', 400],
    ];
    for (const [coding, status] of cases) {
      const raw = await rawExchange(
        edge.httpsPort,
        `POST /upload HTTP/1.1\r\nHost: app.example.test\r\n${coding}\r\n5\r\nhello\r\n0\r\n\r\n`,
        TLS,
      );
      assert.equal(statusOf(raw), status, coding);
      assert.match(raw, /\r\nContent-Type: text\/plain/i);
      assert.match(raw, /\r\nConnection: close\r\n/i);
    }
    assert.equal(upstream.requests.length, before);
  });

  it('closes the client connection when the upstream resets mid-body', async () => {
    const raw = await rawExchange(
      edge.httpsPort,
      'GET /reset HTTP/1.1\r\nHost: app.example.test\r\n\r\n',
      TLS,
    );
    assert.equal(statusOf(raw), 200);
    assert.ok(raw.endsWith('0123456789'));
    const next = await httpsRequest(edge.httpsPort, { path: '/ok' });
    assert.equal(next.status, 200);
  });

  it('answers CONNECT with 405', async () => {
    const raw = await rawExchange(
      edge.httpsPort,
      'CONNECT app.example.test:443 HTTP/1.1\r\nHost: app.example.test:443\r\n\r\n',
      TLS,
    );
    assert.equal(statusOf(raw), 405);
  });

  it('answers malformed requests with 400 and keeps serving', async () => {
    for (const bytes of [
      'GARBAGE\r\n\r\n',
      'GET / HTTP/1.1\r\nHost app.example.test\r\n\r\n',
      'GET / HTTP/9.9\r\n\r\n',
      'G"ET /api/ping HTTP/1.1\r\nHost: app.example.test\r\n\r\n',
      'GET /ok HTTP/1.1\r\nHost: app.example.test\r\nX-Note: a\x01b\r\n\r\n',
      'POST /ok?bad-body HTTP/1.1\r\nHost: app.example.test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
    ]) {
      const raw = await rawExchange(edge.httpsPort, bytes, TLS);
      assert.equal(statusOf(raw), 400, JSON.stringify(bytes));

      // Each rejected request gets an access line under the id its response carries.
      const reqId = /\r\nx-request-id: ([^\r]+)\r\n/i.exec(raw)?.[1];
      assert.ok(reqId !== undefined, `no X-Request-Id for ${JSON.stringify(bytes)}`);
      const line = (): Record<string, unknown> | undefined =>
        edge.logs.find((entry) => entry.msg === 'request' && entry.reqId === reqId);
      await waitUntil(() => line() !== undefined, 1_000, `access line of ${reqId}`);
      assert.equal(line()!.status, 400);
      assert.equal(line()!.bytes, failurePage('badRequest').length);
    }
    // The request with a malformed body was forwarded, so it has one line under its own id and
    // no 499 line.
    await delay(100);
    const bodyLines = edge.logs.filter(
      (entry) => entry.msg === 'request' && entry.path === '/ok?bad-body',
    );
    assert.equal(bodyLines.length, 1);
    assert.equal(bodyLines[0]!.status, 400);
    const next = await httpsRequest(edge.httpsPort, { path: '/ok' });
    assert.equal(next.status, 200);
  });
});
