import assert from 'node:assert/strict';
import type net from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { EdgeConfigInput } from '../../src/config/schema.ts';
import {
  connectRaw,
  delay,
  httpsRequest,
  rawExchange,
  startRawUpstream,
  startTestEdge,
  statusOf,
  waitUntil,
  type RawUpstream,
  type TestEdge,
} from '../support/upstreams.ts';

const TLS = { tls: { servername: 'app.example.test' } };

/** A request head as a scripted upstream read it, with its place on its connection. */
interface SeenRequest {
  head: string;
  /** The body, by the head's Content-Length. */
  body: string;
  path: string;
  method: string;
  /** 0 for the first request on its connection. */
  indexOnSocket: number;
  connection: number;
  socket: net.Socket;
}

/** A raw upstream that splits requests by their Content-Length and lets each test script the reply. */
interface ScriptedUpstream {
  upstream: RawUpstream;
  origin: string;
  requests: SeenRequest[];
  /** Connections accepted so far. */
  connections: number;
  close(): Promise<void>;
}

async function startScripted(answer: (request: SeenRequest) => void): Promise<ScriptedUpstream> {
  const scripted: ScriptedUpstream = {
    upstream: undefined as unknown as RawUpstream,
    origin: '',
    requests: [],
    connections: 0,
    close: () => scripted.upstream.close(),
  };
  scripted.upstream = await startRawUpstream((socket) => {
    const connection = scripted.connections++;
    let buffered = '';
    let indexOnSocket = 0;
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      let end = buffered.indexOf('\r\n\r\n');
      while (end !== -1) {
        const head = buffered.slice(0, end + 4);
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        if (buffered.length < end + 4 + length) return;
        const body = buffered.slice(end + 4, end + 4 + length);
        buffered = buffered.slice(end + 4 + length);
        const [method, path] = head.split(' ') as [string, string];
        const request = {
          head,
          body,
          path,
          method,
          indexOnSocket: indexOnSocket++,
          connection,
          socket,
        };
        scripted.requests.push(request);
        answer(request);
        end = buffered.indexOf('\r\n\r\n');
      }
    });
  });
  scripted.origin = scripted.upstream.origin;
  return scripted;
}

function edgeFor(origin: string, route: Record<string, unknown> = {}): Promise<TestEdge> {
  const config = {
    sites: [
      {
        name: 'prod',
        hosts: ['app.example.test'],
        routes: [{ path: '/', upstream: origin, ...route }],
      },
    ],
  };
  return startTestEdge(config as EdgeConfigInput);
}

function inflight(edge: TestEdge): number {
  let total = 0;
  for (const slot of edge.context.targets.entries()) total += slot.current?.inflight ?? 0;
  return total;
}

const OK = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';

describe('upstream client keep-alive', () => {
  it('shares connections between GETs and small POSTs', async () => {
    const upstream = await startScripted(({ socket }) => socket.write(OK));
    const edge = await edgeFor(upstream.origin);
    try {
      const first = await httpsRequest(edge.httpsPort, { path: '/a' });
      const posted = await httpsRequest(edge.httpsPort, {
        method: 'POST',
        path: '/b',
        headers: { 'content-type': 'application/json' },
        body: '{"x":1}',
      });
      const last = await httpsRequest(edge.httpsPort, { path: '/c' });

      assert.deepEqual([first.status, posted.status, last.status], [200, 200, 200]);
      assert.equal(upstream.connections, 1);
      assert.deepEqual(
        upstream.requests.map((request) => request.indexOnSocket),
        [0, 1, 2],
      );
      assert.match(upstream.requests[1]!.head, /\r\ncontent-length: 7\r\n/i);
      assert.equal(upstream.requests[1]!.body, '{"x":1}');
    } finally {
      await edge.stop();
      await upstream.close();
    }
  });

  it('sends sequential requests over one connection', async () => {
    const upstream = await startScripted(({ socket }) => socket.write(OK));
    const edge = await edgeFor(upstream.origin);
    try {
      for (let i = 0; i < 10; i++) {
        const response = await httpsRequest(edge.httpsPort, { path: `/r${i}` });
        assert.equal(response.status, 200);
        assert.equal(response.body, 'ok');
      }
      assert.equal(upstream.connections, 1);
      assert.deepEqual(
        upstream.requests.map((request) => request.indexOnSocket),
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
      );
    } finally {
      await edge.stop();
      await upstream.close();
    }
  });

  it('queues requests past maxConnections in order', async () => {
    const waiting: SeenRequest[] = [];
    const upstream = await startScripted((request) => waiting.push(request));
    const edge = await edgeFor(upstream.origin, { maxConnections: 2 });
    try {
      const responses: Promise<{ status: number }>[] = [];
      for (let i = 0; i < 5; i++) {
        responses.push(httpsRequest(edge.httpsPort, { path: `/q${i}` }));
        if (i < 2) await waitUntil(() => waiting.length === i + 1, 2_000, `request ${i} upstream`);
        else await delay(50);
      }
      await delay(100);
      assert.equal(upstream.connections, 2);
      assert.equal(waiting.length, 2);

      for (let answered = 0; answered < 5; answered++) {
        await waitUntil(() => waiting.length > answered, 2_000, `request ${answered} upstream`);
        waiting[answered]!.socket.write(OK);
      }
      const statuses = (await Promise.all(responses)).map((response) => response.status);
      assert.deepEqual(statuses, [200, 200, 200, 200, 200]);
      assert.deepEqual(
        waiting.map((request) => request.path),
        ['/q0', '/q1', '/q2', '/q3', '/q4'],
      );
      assert.equal(upstream.connections, 2);
    } finally {
      await edge.stop();
      await upstream.close();
    }
  });

  it('retires idle sockets before Keep-Alive timeout', async () => {
    const upstream = await startScripted(({ socket }) =>
      socket.write('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=2\r\nContent-Length: 2\r\n\r\nok'),
    );
    const edge = await edgeFor(upstream.origin, { timeouts: { upstreamKeepAliveMs: 30_000 } });
    try {
      await httpsRequest(edge.httpsPort, { path: '/a' });
      const [first] = upstream.upstream.sockets;
      const closed = new Promise<number>((resolve) => {
        const started = Date.now();
        first!.on('close', () => resolve(Date.now() - started));
      });
      const afterMs = await closed;
      assert.ok(afterMs >= 700, `closed after ${afterMs} ms`);
      assert.ok(afterMs < 1_800, `closed after ${afterMs} ms`);

      await httpsRequest(edge.httpsPort, { path: '/b' });
      assert.equal(upstream.connections, 2);
    } finally {
      await edge.stop();
      await upstream.close();
    }
  });

  it('retires idle sockets after upstreamKeepAliveMs', async () => {
    const upstream = await startScripted(({ socket }) => socket.write(OK));
    const edge = await edgeFor(upstream.origin, { timeouts: { upstreamKeepAliveMs: 200 } });
    try {
      await httpsRequest(edge.httpsPort, { path: '/a' });
      await waitUntil(() => upstream.upstream.sockets.size === 0, 2_000, 'idle socket to close');
      await httpsRequest(edge.httpsPort, { path: '/b' });
      assert.equal(upstream.connections, 2);
    } finally {
      await edge.stop();
      await upstream.close();
    }
  });

  it('drops sockets after Connection: close or HTTP/1.0', async () => {
    const replies = [
      'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok',
      'HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok',
    ];
    let served = 0;
    // The upstream leaves its sockets open, so only the edge decides against reuse.
    const upstream = await startScripted(({ socket }) => socket.write(replies[served++ % 2]!));
    const edge = await edgeFor(upstream.origin);
    try {
      for (let i = 0; i < 4; i++)
        assert.equal((await httpsRequest(edge.httpsPort, { path: `/c${i}` })).status, 200);
      assert.equal(upstream.connections, 4);
    } finally {
      await edge.stop();
      await upstream.close();
    }
  });
});

describe('upstream client retries', () => {
  let upstream: ScriptedUpstream;
  let edge: TestEdge;

  before(async () => {
    // The first request on a connection gets a response, and a second one a clean close (FIN),
    // as when an upstream's idle timeout closes the socket while the request is on its way.
    upstream = await startScripted(({ socket, indexOnSocket }) => {
      if (indexOnSocket === 0) socket.write(OK);
      else socket.end();
    });
    edge = await edgeFor(upstream.origin, { maxConnections: 1 });
  });

  after(async () => {
    await edge.stop();
    await upstream.close();
  });

  it('retries GET on a fresh socket', async () => {
    for (let i = 0; i < 3; i++) {
      const response = await httpsRequest(edge.httpsPort, { path: `/g${i}` });
      assert.equal(response.status, 200);
    }
    const paths = upstream.requests.map((request) => request.path);
    assert.deepEqual(paths, ['/g0', '/g1', '/g1', '/g2', '/g2']);
  });

  it('answers 502 to a POST without retry', async () => {
    await httpsRequest(edge.httpsPort, { path: '/first' });
    const before = upstream.requests.length;
    const response = await httpsRequest(edge.httpsPort, { method: 'POST', path: '/p' });
    assert.equal(response.status, 502);
    assert.equal(upstream.requests.length, before + 1);
    assert.match(upstream.requests.at(-1)!.head, /\r\ncontent-length: 0\r\n/i);
  });

  it('never resends a POST body', async () => {
    await httpsRequest(edge.httpsPort, { path: '/first' });
    const before = upstream.requests.length;
    const response = await httpsRequest(edge.httpsPort, {
      method: 'POST',
      path: '/form',
      body: 'a=1',
    });

    assert.equal(response.status, 502);
    assert.deepEqual(
      upstream.requests.slice(before).map((request) => request.path),
      ['/form'],
    );
  });

  it('resends a PUT with its body', async () => {
    await httpsRequest(edge.httpsPort, { path: '/first' });
    const before = upstream.requests.length;
    const response = await httpsRequest(edge.httpsPort, {
      method: 'PUT',
      path: '/item',
      body: 'v=2',
    });
    const sent = upstream.requests.slice(before);

    assert.equal(response.status, 200);
    assert.deepEqual(
      sent.map((request) => request.path),
      ['/item', '/item'],
    );
    assert.equal(sent[1]!.indexOnSocket, 0, 'the second try is on a new connection');
    assert.equal(sent[1]!.body, 'v=2');
  });
});

describe('upstream client framing', () => {
  let upstream: ScriptedUpstream;
  let edge: TestEdge;

  before(async () => {
    upstream = await startScripted(({ socket, path, method }) => {
      if (path === '/chunked') {
        socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
        setTimeout(() => socket.write('6\r\n world\r\n0\r\nX-T: 1\r\n\r\n'), 30);
      } else if (path === '/until-close') {
        socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil ');
        setTimeout(() => socket.end('close'), 30);
      } else if (path === '/head' && method === 'HEAD') {
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n');
      } else if (path === '/204') {
        socket.write('HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n');
      } else if (path === '/304') {
        socket.write('HTTP/1.1 304 Not Modified\r\nETag: "x"\r\nContent-Length: 7\r\n\r\n');
      } else if (path === '/hints') {
        socket.write('HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n');
        setTimeout(() => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal'), 30);
      } else if (path === '/cut') {
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789');
        setTimeout(() => socket.end(), 30);
      } else if (path === '/bare-lf') {
        socket.write('HTTP/1.1 200 OK\nContent-Length: 2\n\nok');
      } else {
        socket.write(OK);
      }
    });
    edge = await edgeFor(upstream.origin);
  });

  after(async () => {
    await edge.stop();
    await upstream.close();
  });

  it('decodes a chunked body and sends it re-chunked', async () => {
    const raw = await rawExchange(
      edge.httpsPort,
      'GET /chunked HTTP/1.1\r\nHost: app.example.test\r\nConnection: close\r\n\r\n',
      TLS,
    );
    assert.equal(statusOf(raw), 200);
    assert.match(raw, /\r\ntransfer-encoding: chunked\r\n/i);
    const response = await httpsRequest(edge.httpsPort, { path: '/chunked' });
    assert.equal(response.body, 'hello world');
    assert.equal(response.headers['x-t'], undefined);
  });

  it('reads a body delimited by the upstream closing', async () => {
    const before = upstream.connections;
    const response = await httpsRequest(edge.httpsPort, { path: '/until-close' });
    assert.equal(response.status, 200);
    assert.equal(response.body, 'until close');
    const next = await httpsRequest(edge.httpsPort, { path: '/after' });
    assert.equal(next.status, 200);
    assert.equal(upstream.connections, before + 1);
  });

  it('relays HEAD without a body', async () => {
    const raw = await rawExchange(
      edge.httpsPort,
      'HEAD /head HTTP/1.1\r\nHost: app.example.test\r\nConnection: close\r\n\r\n',
      TLS,
    );
    assert.equal(statusOf(raw), 200);
    assert.match(raw, /\r\ncontent-length: 5\r\n/i);
    assert.ok(raw.endsWith('\r\n\r\n'), JSON.stringify(raw));
    const before = upstream.connections;
    assert.equal((await httpsRequest(edge.httpsPort, { path: '/after-head' })).body, 'ok');
    assert.equal(upstream.connections, before);
  });

  it('relays 204 and 304 without a body', async () => {
    const noContent = await httpsRequest(edge.httpsPort, { path: '/204' });
    assert.equal(noContent.status, 204);
    assert.equal(noContent.headers['x-a'], '1');
    const notModified = await httpsRequest(edge.httpsPort, { path: '/304' });
    assert.equal(notModified.status, 304);
    assert.equal(notModified.headers.etag, '"x"');
    const before = upstream.connections;
    assert.equal((await httpsRequest(edge.httpsPort, { path: '/after-304' })).body, 'ok');
    assert.equal(upstream.connections, before);
  });

  it('drops 103 Early Hints and relays the final response', async () => {
    const raw = await rawExchange(
      edge.httpsPort,
      'GET /hints HTTP/1.1\r\nHost: app.example.test\r\nConnection: close\r\n\r\n',
      TLS,
    );
    assert.equal(statusOf(raw), 200);
    assert.doesNotMatch(raw, /103/);
    assert.ok(raw.endsWith('final'));
  });

  it('cuts the client on a mid-body close', async () => {
    const raw = await rawExchange(
      edge.httpsPort,
      'GET /cut HTTP/1.1\r\nHost: app.example.test\r\n\r\n',
      TLS,
    );
    assert.equal(statusOf(raw), 200);
    assert.ok(raw.endsWith('0123456789'));
    assert.ok(edge.logs.some((entry) => entry.msg === 'upstream failed mid-response'));
    assert.equal((await httpsRequest(edge.httpsPort, { path: '/after-cut' })).status, 200);
  });

  it('answers 502 to a head with bare LF line ends', async () => {
    const response = await httpsRequest(edge.httpsPort, { path: '/bare-lf' });
    assert.equal(response.status, 502);
    assert.doesNotMatch(response.body, /ok/);
    assert.equal((await httpsRequest(edge.httpsPort, { path: '/after-lf' })).status, 200);
  });
});

describe('upstream client timeouts', { timeout: 10_000 }, () => {
  let upstream: ScriptedUpstream;
  let edge: TestEdge;

  before(async () => {
    upstream = await startScripted(({ socket, path }) => {
      if (path === '/stall') socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nstart');
      // Any other path gets no reply.
    });
    edge = await edgeFor(upstream.origin, { timeouts: { upstreamMs: 400 } });
  });

  after(async () => {
    await edge.stop();
    await upstream.close();
  });

  it('answers 504 when no head arrives within upstreamMs', async () => {
    const started = Date.now();
    const response = await httpsRequest(edge.httpsPort, { path: '/silent' });
    assert.equal(response.status, 504);
    assert.ok(Date.now() - started >= 350);
    const line = edge.logs.find((entry) => entry.msg === 'upstream request failed');
    assert.equal(line?.code, 'EDGE_UPSTREAM_TIMEOUT');
    assert.equal(inflight(edge), 0);
  });

  it('cuts the response when the body stalls longer than upstreamMs', async () => {
    const raw = await rawExchange(
      edge.httpsPort,
      'GET /stall HTTP/1.1\r\nHost: app.example.test\r\n\r\n',
      { ...TLS, timeoutMs: 3_000 },
    );
    assert.equal(statusOf(raw), 200);
    assert.ok(raw.endsWith('start'));
    await waitUntil(() => inflight(edge) === 0, 1_000, 'target release');
  });
});

describe('upstream client when the client leaves', () => {
  let upstream: ScriptedUpstream;
  let edge: TestEdge;

  before(async () => {
    upstream = await startScripted(({ socket }) =>
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nstart'),
    );
    // The default upstreamMs (60 s) keeps the timeouts from closing the socket instead.
    edge = await edgeFor(upstream.origin);
  });

  after(async () => {
    await edge.stop();
    await upstream.close();
  });

  it('releases target and socket on client exit', async () => {
    const socket = connectRaw(edge.httpsPort, TLS.tls);
    socket.on('error', () => {});
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    socket.write('GET /partial HTTP/1.1\r\nHost: app.example.test\r\n\r\n');
    await waitUntil(() => text.endsWith('start'), 2_000, 'partial body');
    assert.equal(inflight(edge), 1);
    const upstreamSocket = upstream.requests.at(-1)!.socket;

    socket.destroy();
    await waitUntil(() => upstreamSocket.destroyed, 1_000, 'upstream socket to close');
    await waitUntil(() => inflight(edge) === 0, 1_000, 'target release');
    const line = edge.logs.filter((entry) => entry.path === '/partial').at(-1);
    assert.equal(line?.status, 499);
  });
});

describe('upstream client backpressure', () => {
  const BODY_BYTES = 32 * 1024 * 1024;
  let upstream: ScriptedUpstream;
  let edge: TestEdge;

  before(async () => {
    upstream = await startScripted(({ socket }) => {
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${BODY_BYTES}\r\n\r\n`);
      socket.write(Buffer.alloc(BODY_BYTES, 0x61));
    });
    edge = await edgeFor(upstream.origin);
  });

  after(async () => {
    await edge.stop();
    await upstream.close();
  });

  it('pauses the upstream for a slow client', async () => {
    const socket = connectRaw(edge.httpsPort, TLS.tls);
    socket.on('error', () => {});
    socket.write('GET /big HTTP/1.1\r\nHost: app.example.test\r\nConnection: close\r\n\r\n');
    let received = 0;
    socket.once('data', (chunk: Buffer) => {
      received += chunk.length;
      socket.pause();
    });
    await waitUntil(() => upstream.requests.length === 1, 2_000, 'upstream request');
    await delay(500);

    // Kernel buffers take a few MB, and the rest stays in the upstream's own write buffer.
    const upstreamSocket = upstream.requests[0]!.socket;
    assert.ok(
      upstreamSocket.writableLength > BODY_BYTES / 2,
      `upstream still to write: ${upstreamSocket.writableLength} bytes`,
    );

    const done = new Promise<void>((resolve) => socket.on('close', resolve));
    socket.on('data', (chunk: Buffer) => (received += chunk.length));
    socket.resume();
    await done;
    assert.ok(received > BODY_BYTES, `client received ${received} bytes`);
  });
});
