import assert from 'node:assert/strict';
import type net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { BUFFERED_BODY_MAX_BYTES } from '../../src/proxy/forwarder.ts';
import {
  connectRaw,
  delay,
  oneSite,
  startRawUpstream,
  startTestEdge,
  waitUntil,
  type RawUpstream,
  type TestEdge,
} from '../support/upstreams.ts';

const TLS = { servername: 'app.example.test' };

/**
 * Replies to each request once its whole body has arrived, with the body's length and its first
 * and last bytes, and records every byte received.
 */
function answerWhenComplete(received: string[]): (socket: net.Socket) => void {
  return (socket) => {
    let pending = '';
    socket.on('data', (chunk: Buffer) => {
      const text = chunk.toString('latin1');
      received.push(text);
      pending += text;
      const headEnd = pending.indexOf('\r\n\r\n');
      if (headEnd === -1) return;
      const length = Number(/content-length: (\d+)/i.exec(pending.slice(0, headEnd))?.[1] ?? 0);
      const body = pending.slice(headEnd + 4);
      if (body.length < length) return;
      pending = '';
      const answer = `${body.length} ${body.slice(0, 3)}..${body.slice(-3)}`;
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${answer.length}\r\n\r\n${answer}`);
    });
  };
}

/** Reads a socket until it closes and returns what arrived. */
function readAll(socket: net.Socket): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    socket.on('close', () => resolve(text));
  });
}

describe('request bodies on the proxy', () => {
  let edge: TestEdge;
  let upstream: RawUpstream;
  const received: string[] = [];

  before(async () => {
    upstream = await startRawUpstream(answerWhenComplete(received));
    edge = await startTestEdge(oneSite(upstream.origin));
  });

  after(async () => {
    await edge.stop();
    await upstream.close();
  });

  /** Returns the target of the only route, whose in-flight count a deploy's drain waits for. */
  function target() {
    const [slot] = [...edge.context.targets.entries()];
    assert.ok(slot?.current, 'the route has a target');
    return slot.current;
  }

  it('small body sent once complete', async () => {
    received.length = 0;
    const socket = connectRaw(edge.httpsPort, TLS);
    const response = readAll(socket);
    socket.write(
      'POST /form HTTP/1.1\r\nHost: app.example.test\r\nContent-Length: 10\r\nConnection: close\r\n\r\nabcde',
    );
    await delay(300);
    const beforeRest = received.join('');
    socket.write('fghij');
    const text = await response;

    assert.equal(beforeRest, '', 'the upstream saw nothing of a partial small body');
    assert.match(text, /^HTTP\/1\.1 200 /);
    assert.match(text, /\r\n\r\n10 abc\.\.hij$/);
    assert.match(received.join(''), /^POST \/form HTTP\/1\.1\r\n[^]*\r\n\r\nabcdefghij$/);
    assert.equal(target().inflight, 0);
  });

  it('larger body streamed', async () => {
    received.length = 0;
    const length = BUFFERED_BODY_MAX_BYTES + 1;
    const socket = connectRaw(edge.httpsPort, TLS);
    const response = readAll(socket);
    socket.write(
      `POST /upload HTTP/1.1\r\nHost: app.example.test\r\nContent-Length: ${length}\r\nConnection: close\r\n\r\nxyz`,
    );
    await waitUntil(() => received.join('').includes('POST /upload'), 2_000, 'the request head');
    socket.write('y'.repeat(length - 6) + 'end');
    const text = await response;

    assert.match(text, /^HTTP\/1\.1 200 /);
    assert.match(text, new RegExp(`\\r\\n\\r\\n${length} xyz\\.\\.end$`));
  });

  it('pipelined small bodies', async () => {
    received.length = 0;
    const socket = connectRaw(edge.httpsPort, TLS);
    const response = readAll(socket);
    socket.write(
      'POST /a HTTP/1.1\r\nHost: app.example.test\r\nContent-Length: 6\r\n\r\nfirst!' +
        'POST /b HTTP/1.1\r\nHost: app.example.test\r\nContent-Length: 7\r\nConnection: close\r\n\r\nsecond!',
    );
    const text = await response;

    assert.match(text, /\r\n\r\n6 fir\.\.st!HTTP\/1\.1 200 /);
    assert.match(text, /\r\n\r\n7 sec\.\.nd!$/);
  });

  it('long pipeline on Node path', async () => {
    const warnings: string[] = [];
    const onWarning = (warning: Error): void => {
      warnings.push(warning.name);
    };
    process.on('warning', onWarning);
    received.length = 0;
    const count = 60;
    const socket = connectRaw(edge.httpsPort, TLS);
    const response = readAll(socket);
    // A chunked body hands the connection to Node's server; the GETs behind it wait their turn.
    let pipeline =
      'POST /lead HTTP/1.1\r\nHost: app.example.test\r\nTransfer-Encoding: chunked\r\n\r\n' +
      '3\r\nabc\r\n0\r\n\r\n';
    for (let i = 0; i < count; i++)
      pipeline += `GET /p${i} HTTP/1.1\r\nHost: app.example.test\r\n\r\n`;
    socket.write(
      `${pipeline}GET /last HTTP/1.1\r\nHost: app.example.test\r\nConnection: close\r\n\r\n`,
    );
    const text = await response;
    process.off('warning', onWarning);
    const paths = [...received.join('').matchAll(/(?:GET|POST) (\/\w+) HTTP/g)].map((m) => m[1]);

    assert.equal(text.match(/HTTP\/1\.1 200 /g)?.length, count + 2);
    assert.deepEqual(paths, [
      '/lead',
      ...Array.from({ length: count }, (_, i) => `/p${i}`),
      '/last',
    ]);
    assert.deepEqual(warnings, []);
  });

  it('client gone mid-body: 400, no upstream', async () => {
    received.length = 0;
    const connectionsBefore = upstream.sockets.size;
    const socket = connectRaw(edge.httpsPort, TLS);
    socket.on('error', () => {});
    socket.write('POST /left HTTP/1.1\r\nHost: app.example.test\r\nContent-Length: 10\r\n\r\nabc');
    await delay(200);
    socket.destroy();
    await waitUntil(
      () => edge.logs.some((entry) => entry.msg === 'request' && entry.path === '/left'),
      2_000,
      'the access line',
    );
    const line = edge.logs.find((entry) => entry.msg === 'request' && entry.path === '/left');

    // nginx also logs 400 when the client closes while it reads the body.
    assert.equal(line?.status, 400);
    assert.equal(received.join(''), '');
    assert.ok(upstream.sockets.size <= connectionsBefore, 'no new upstream connection');
    assert.equal(target().inflight, 0);
  });
});

describe('request body limit on the direct path', () => {
  let edge: TestEdge;
  let upstream: RawUpstream;
  const received: string[] = [];

  before(async () => {
    upstream = await startRawUpstream(answerWhenComplete(received));
    edge = await startTestEdge({
      sites: [
        {
          name: 'prod',
          hosts: ['app.example.test'],
          routes: [{ path: '/', upstream: upstream.origin, maxBodyBytes: 8 }],
        },
      ],
    });
  });

  after(async () => {
    await edge.stop();
    await upstream.close();
  });

  it('413 for a body over maxBodyBytes', async () => {
    const socket = connectRaw(edge.httpsPort, TLS);
    const response = readAll(socket);
    socket.write(
      'POST /ok HTTP/1.1\r\nHost: app.example.test\r\nContent-Length: 8\r\n\r\n12345678' +
        'POST /big HTTP/1.1\r\nHost: app.example.test\r\nContent-Length: 9\r\nConnection: close\r\n\r\n123456789',
    );
    const text = await response;

    assert.match(text, /^HTTP\/1\.1 200 [^]*\r\n\r\n8 123\.\.678HTTP\/1\.1 413 /);
    assert.doesNotMatch(received.join(''), /POST \/big/);
  });

  for (const [framing, big] of [
    ['declared', 'Content-Length: 9\r\n\r\n123456789'],
    ['chunked', 'Transfer-Encoding: chunked\r\n\r\n9\r\n123456789\r\n0\r\n\r\n'],
  ]) {
    it(`nothing upstream behind a ${framing} 413`, async () => {
      received.length = 0;
      const socket = connectRaw(edge.httpsPort, TLS);
      const response = readAll(socket);
      socket.write(
        `GET /first HTTP/1.1\r\nHost: app.example.test\r\n\r\n` +
          `POST /big HTTP/1.1\r\nHost: app.example.test\r\n${big}` +
          'POST /after HTTP/1.1\r\nHost: app.example.test\r\nContent-Length: 5\r\n\r\nhello',
      );
      const text = await response;
      await delay(100);

      assert.match(text, /^HTTP\/1\.1 200 [^]*HTTP\/1\.1 413 /);
      assert.doesNotMatch(received.join(''), /\/after/);
      assert.equal(
        edge.logs.filter((entry) => entry.msg === 'request' && entry.path === '/after').length,
        0,
      );
    });
  }
});

describe('upstream answers before the whole body', () => {
  let edge: TestEdge;
  let upstream: RawUpstream;

  before(async () => {
    // Responds with 401 to the request head of /early without reading its body, and with 200 to /next.
    upstream = await startRawUpstream((socket) => {
      let text = '';
      socket.on('data', (chunk: Buffer) => {
        text += chunk.toString('latin1');
        if (text.includes('POST /early ')) {
          text = '';
          socket.write('HTTP/1.1 401 Unauthorized\r\nContent-Length: 4\r\n\r\nnope');
        } else if (text.includes('GET /next ')) {
          text = '';
          socket.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext');
        }
      });
    });
    edge = await startTestEdge(oneSite(upstream.origin));
  });

  after(async () => {
    await edge.stop();
    await upstream.close();
  });

  for (const [framing, head, first, rest] of [
    ['declared', 'Content-Length: 117000\r\n\r\n', 'x'.repeat(17_000), 'x'.repeat(100_000)],
    [
      'chunked',
      'Transfer-Encoding: chunked\r\n\r\n',
      `64\r\n${'x'.repeat(100)}\r\n`,
      `30d40\r\n${'x'.repeat(200_000)}\r\n0\r\n\r\n`,
    ],
  ]) {
    it(`next request served after an early answer, ${framing} body`, async () => {
      const socket = connectRaw(edge.httpsPort, TLS);
      const response = readAll(socket);
      socket.write(`POST /early HTTP/1.1\r\nHost: app.example.test\r\n${head}${first}`);
      await delay(300);
      socket.write(
        `${rest}GET /next HTTP/1.1\r\nHost: app.example.test\r\nConnection: close\r\n\r\n`,
      );
      const text = await response;

      assert.match(text, /^HTTP\/1\.1 401 [^]*\r\n\r\nnopeHTTP\/1\.1 200 [^]*\r\n\r\nnext$/);
    });
  }

  it('cuts a client that goes on past the body limit', async () => {
    const limited = await startTestEdge({
      sites: [
        {
          name: 'prod',
          hosts: ['app.example.test'],
          routes: [{ path: '/', upstream: upstream.origin, maxBodyBytes: 65_536 }],
        },
      ],
    });
    try {
      const socket = connectRaw(limited.httpsPort, TLS);
      socket.on('error', () => {});
      const response = readAll(socket);
      socket.write(
        'POST /early HTTP/1.1\r\nHost: app.example.test\r\nTransfer-Encoding: chunked\r\n\r\n' +
          `64\r\n${'x'.repeat(100)}\r\n`,
      );
      await delay(300);
      let closed = false;
      socket.on('close', () => (closed = true));
      // 64 chunks of 8 KiB, eight times the limit, and no end.
      let sent = 0;
      for (; sent < 64 && !closed; sent++) {
        socket.write(`2000\r\n${'y'.repeat(8_192)}\r\n`);
        await delay(10);
      }
      const text = await response;

      assert.match(text, /^HTTP\/1\.1 401 [^]*\r\n\r\nnope$/);
      assert.ok(sent < 64, `the connection stayed open for all ${sent} chunks`);
    } finally {
      await limited.stop();
    }
  });
});
