import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http from 'node:http';
import type net from 'node:net';
import { after, before, describe, it } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import { serviceKey, Target } from '../../src/targets/registry.ts';
import {
  connectRaw,
  delay,
  listenUpstream,
  rawExchange,
  readHead,
  resetSocket,
  startRawUpstream,
  startTestEdge,
  statusOf,
  waitUntil,
  type RawUpstream,
  type TestEdge,
  type TestUpstream,
} from '../support/upstreams.ts';

const HANDSHAKE_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

function handshake(path: string, extra = '', host = 'app.example.test'): string {
  return (
    `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
    `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${HANDSHAKE_KEY}\r\n${extra}\r\n`
  );
}

function acceptKey(key: string): string {
  return createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
}

/** Writes a 101 response to the upgrade request `head` that an upstream socket read. */
function acceptUpgrade(socket: net.Socket, head: string): void {
  const key = /sec-websocket-key: (.*)\r\n/i.exec(head)![1]!;
  socket.write(
    `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(key)}\r\n\r\n`,
  );
}

/** Opens a `ws` client to the edge over TLS. */
function openClient(port: number, path: string, headers: Record<string, string> = {}): WebSocket {
  // ws hands `servername` to tls.connect, though its option type does not list it.
  const options: WebSocket.ClientOptions & { servername: string } = {
    headers: { host: 'app.example.test', ...headers },
    servername: 'app.example.test',
    rejectUnauthorized: false,
  };
  return new WebSocket(`wss://127.0.0.1:${port}${path}`, options);
}

function nextMessage(socket: WebSocket): Promise<string> {
  return new Promise((resolve, reject) => {
    socket.once('message', (data) => resolve(data.toString()));
    socket.once('error', reject);
  });
}

function closed(socket: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) =>
    socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
}

function opened(socket: WebSocket): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
}

/** An HTTP server with a ws echo on every path; records each handshake's headers. */
async function startEcho(): Promise<TestUpstream & { handshakes: http.IncomingHttpHeaders[] }> {
  const handshakes: http.IncomingHttpHeaders[] = [];
  const server = http.createServer((_req, res) => res.end('not a websocket'));
  const wss = new WebSocketServer({ noServer: true });
  wss.on('connection', (socket) =>
    socket.on('message', (data, binary) => socket.send(data, { binary })),
  );
  server.on('upgrade', (req, socket, head) => {
    handshakes.push(req.headers);
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });
  const upstream = await listenUpstream(server);
  const close = upstream.close;
  return {
    ...upstream,
    handshakes,
    async close() {
      for (const client of wss.clients) client.terminate();
      await close();
    },
  };
}

describe('proxy WebSocket', () => {
  let edge: TestEdge;
  let echo: Awaited<ReturnType<typeof startEcho>>;
  let refuser: RawUpstream;
  let silent: RawUpstream;
  let halfFrame: RawUpstream;
  let halfFrameSocket: net.Socket | undefined;
  let holder: RawUpstream;

  before(async () => {
    echo = await startEcho();
    refuser = await startRawUpstream((socket) => {
      // Answers like Django Channels' origin check, and leaves the socket open.
      readHead(socket).then(
        () => socket.write('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n'),
        () => {},
      );
    });
    silent = await startRawUpstream((socket) => socket.resume());
    halfFrame = await startRawUpstream((socket) => {
      readHead(socket).then(
        (head) => {
          acceptUpgrade(socket, head);
          halfFrameSocket = socket;
        },
        () => {},
      );
    });
    // Accepts the upgrade and keeps its socket open after the edge ends its side.
    holder = await startRawUpstream(
      (socket) => {
        readHead(socket).then(
          (head) => acceptUpgrade(socket, head),
          () => {},
        );
      },
      { allowHalfOpen: true },
    );
    edge = await startTestEdge({
      timeouts: { headersMs: 200, requestMs: 300, keepAliveMs: 200 },
      sites: [
        {
          name: 'prod',
          hosts: ['app.example.test'],
          routes: [
            { path: '/ws', upstream: echo.origin, timeouts: { upstreamMs: 300 } },
            { path: '/idle', upstream: echo.origin, timeouts: { websocketIdleMs: 300 } },
            { path: '/refuse', upstream: refuser.origin },
            { path: '/silent', upstream: silent.origin, timeouts: { upstreamMs: 500 } },
            { path: '/half', upstream: halfFrame.origin },
            { path: '/hold', upstream: holder.origin },
            { path: '/chat', service: 'chat' },
            { path: '/nows', upstream: echo.origin, websocket: false },
          ],
        },
        {
          name: 'plain',
          hosts: ['plain.example.test'],
          http: 'serve',
          routes: [{ path: '/hold', upstream: holder.origin }],
        },
      ],
      services: {
        chat: { container: 'chat-1', image: 'example/chat', port: 80, environment: 'prod' },
      },
      deploy: { environments: { prod: { secretEnv: 'DEPLOY_SECRET_PROD' } } },
    });
  });

  after(async () => {
    await edge.stop();
    for (const upstream of [echo, refuser, silent, halfFrame, holder]) await upstream.close();
  });

  it('echoes messages over TLS and tells the upstream the client used https', async () => {
    const client = openClient(edge.httpsPort, '/ws/chat/', { 'x-forwarded-proto': 'http' });
    await opened(client);
    client.send('hello');
    assert.equal(await nextMessage(client), 'hello');
    client.close();

    const headers = echo.handshakes.at(-1)!;
    assert.equal(headers['x-forwarded-proto'], 'https');
    assert.equal(headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(headers.host, 'app.example.test');
  });

  it('sends the absolute-form authority as Host in the handshake', async () => {
    const raw = await rawExchange(
      edge.httpsPort,
      handshake('https://app.example.test/ws/').replace(
        'Host: app.example.test',
        'Host: evil.attacker.test',
      ),
      { tls: { servername: 'app.example.test' }, timeoutMs: 500 },
    );
    assert.equal(statusOf(raw), 101);
    assert.equal(echo.handshakes.at(-1)!.host, 'app.example.test');
  });

  it('answers a handshake with two Host lines with 400', async () => {
    const count = echo.handshakes.length;
    const raw = await rawExchange(
      edge.httpsPort,
      handshake('https://app.example.test/ws/', 'Host: app.example.test\r\n'),
      { tls: { servername: 'app.example.test' }, timeoutMs: 500 },
    );
    assert.equal(statusOf(raw), 400);
    assert.equal(echo.handshakes.length, count);
  });

  it('passes header bytes above 127 through the handshake unchanged', async () => {
    const request = Buffer.concat([
      Buffer.from(handshake('/ws/', 'X-Hi: caf').slice(0, -2)),
      Buffer.from([0xc3, 0xa9]),
      Buffer.from('\r\n\r\n'),
    ]);
    const raw = await rawExchange(edge.httpsPort, request, {
      tls: { servername: 'app.example.test' },
      timeoutMs: 500,
    });
    assert.equal(statusOf(raw), 101);
    const received = echo.handshakes.at(-1)!['x-hi'] as string;
    assert.equal(Buffer.from(received, 'latin1').toString('hex'), '636166c3a9');
  });

  it('accepts the Upgrade and Connection header variants browsers send', async () => {
    const variants = [
      'GET /ws/ HTTP/1.1\r\nHost: app.example.test\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n',
      'GET /ws/ HTTP/1.1\r\nHost: app.example.test\r\nConnection: Upgrade\r\nUpgrade: WebSocket\r\n',
      'GET /ws/ HTTP/1.1\r\nHost: app.example.test\r\nconnection: upgrade\r\nupgrade: websocket\r\n',
    ];
    for (const start of variants) {
      const raw = await rawExchange(
        edge.httpsPort,
        `${start}Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${HANDSHAKE_KEY}\r\n\r\n`,
        { tls: { servername: 'app.example.test' }, timeoutMs: 500 },
      );
      assert.equal(statusOf(raw), 101, start);
      assert.match(
        raw,
        new RegExp(
          `Sec-WebSocket-Accept: ${acceptKey(HANDSHAKE_KEY).replace(/[+/=]/g, '\\$&')}`,
          'i',
        ),
      );
    }
  });

  it('keeps an idle WebSocket open past every HTTP timeout', async () => {
    const client = openClient(edge.httpsPort, '/ws/');
    await opened(client);
    client.send('first');
    assert.equal(await nextMessage(client), 'first');

    await delay(1_500);
    assert.equal(client.readyState, WebSocket.OPEN);
    client.send('still-here');
    assert.equal(await nextMessage(client), 'still-here');
    client.close();
  });

  it('closes a WebSocket idle longer than websocketIdleMs with 1001', async () => {
    const client = openClient(edge.httpsPort, '/idle/');
    await opened(client);
    const result = await closed(client);
    assert.equal(result.code, 1001);
  });

  it('relays a refused upgrade and closes both sockets, every time', async () => {
    for (let i = 0; i < 200; i++) {
      const raw = await rawExchange(
        edge.httpsPort,
        handshake('/refuse/', 'Origin: https://evil.example.test\r\n'),
        {
          tls: { servername: 'app.example.test' },
          timeoutMs: 1_000,
        },
      );
      assert.equal(statusOf(raw), 403, `attempt ${i}`);
    }
    await waitUntil(() => refuser.sockets.size === 0, 1_000, 'upstream sockets to close');
  });

  it('survives upstream resets during the handshake and recovers when the backend is back', async () => {
    const stub = await startRawUpstream((socket) => {
      readHead(socket).then(
        () => {
          if (Math.random() < 0.5)
            socket.write('HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n');
          socket.resetAndDestroy();
        },
        () => {},
      );
    });
    edge.context.targets.switch(serviceKey('chat'), new Target(stub.origin, 'restarting'));
    try {
      for (let i = 0; i < 50; i++) {
        const socket = connectRaw(edge.httpsPort, { servername: 'app.example.test' });
        socket.on('error', () => {});
        socket.write(handshake('/chat/'));
        if (i % 2 === 0) {
          resetSocket(socket);
        } else {
          const text = await new Promise<string>((resolve) => {
            let data = '';
            socket.on('data', (chunk: Buffer) => (data += chunk.toString('latin1')));
            socket.on('close', () => resolve(data));
          });
          assert.ok(text === '' || statusOf(text) === 502, `attempt ${i}: ${text}`);
        }
      }
    } finally {
      await stub.close();
    }

    edge.context.targets.switch(serviceKey('chat'), new Target(echo.origin, 'restarted'));
    const client = openClient(edge.httpsPort, '/chat/');
    await opened(client);
    client.send('back');
    assert.equal(await nextMessage(client), 'back');
    client.close();
  });

  it('closes the upstream connection when the client resets a pending upgrade', async () => {
    const socket = connectRaw(edge.httpsPort, { servername: 'app.example.test' });
    socket.on('error', () => {});
    socket.write(handshake('/silent/'));
    await waitUntil(() => silent.sockets.size === 1, 1_000, 'upstream connection');
    const [upstreamSocket] = silent.sockets;
    resetSocket(socket);
    await waitUntil(() => upstreamSocket!.destroyed, 1_000, 'upstream connection to close');
  });

  for (const listener of ['https', 'http'] as const) {
    it(`ends a half-closed tunnel over ${listener}`, async () => {
      const target = edge.context.targets.slot('upstream:' + holder.origin).current!;
      const socket =
        listener === 'https'
          ? connectRaw(edge.httpsPort, { servername: 'app.example.test' })
          : connectRaw(edge.httpPort);
      socket.on('error', () => {});
      let clientClosed = false;
      socket.on('close', () => (clientClosed = true));
      const host = listener === 'https' ? 'app.example.test' : 'plain.example.test';
      socket.write(handshake('/hold/', '', host));
      assert.equal(statusOf(await readHead(socket)), 101);
      await waitUntil(() => holder.sockets.size === 1, 1_000, 'upstream connection');
      const [upstreamSocket] = holder.sockets;
      let upstreamEnded = false;
      upstreamSocket!.on('end', () => (upstreamEnded = true));
      assert.equal(target.upgrades.size, 1);

      socket.end();
      await waitUntil(() => upstreamEnded, 1_000, 'end of stream passed to the upstream');
      await waitUntil(() => clientClosed, 4_000, 'client socket to close');
      await waitUntil(() => target.upgrades.size === 0, 1_000, 'tunnel to close');
      // The edge has closed its upstream socket, so the upstream's writes are reset.
      const writeUntilReset = (): boolean => {
        if (!upstreamSocket!.destroyed) upstreamSocket!.write('x');
        return upstreamSocket!.destroyed;
      };
      await waitUntil(writeUntilReset, 1_000, 'upstream socket reset');
      await waitUntil(() => holder.sockets.size === 0, 1_000, 'upstream socket to go');
    });
  }

  it('answers 504 when the upstream never answers the handshake', async () => {
    const raw = await rawExchange(edge.httpsPort, handshake('/silent/'), {
      tls: { servername: 'app.example.test' },
      timeoutMs: 3_000,
    });
    assert.equal(statusOf(raw), 504);
  });

  it('refuses upgrades on a route with websocket off', async () => {
    const raw = await rawExchange(edge.httpsPort, handshake('/nows/'), {
      tls: { servername: 'app.example.test' },
    });
    assert.equal(statusOf(raw), 403);
  });

  it('counts open WebSockets on the target and closes them with a close frame', async () => {
    const target = edge.context.targets.slot('upstream:' + echo.origin).current!;
    const client = openClient(edge.httpsPort, '/ws/');
    await opened(client);
    assert.equal(target.upgrades.size, 1);
    assert.equal(target.inflight, 0);

    const result = closed(client);
    await target.closeUpgrades(1012, 0, 0);
    assert.equal((await result).code, 1012);
    await waitUntil(() => target.upgrades.size === 0, 1_000, 'upgrade to be removed');
  });

  it('waits for the end of a frame before sending the close frame', async () => {
    const target = edge.context.targets.slot('upstream:' + halfFrame.origin).current!;
    const client = openClient(edge.httpsPort, '/half/');
    await opened(client);
    await waitUntil(() => halfFrameSocket !== undefined, 1_000, 'upstream handshake');

    const payload = Buffer.alloc(1000, 0x61);
    const frame = Buffer.concat([Buffer.from([0x82, 126, 1000 >> 8, 1000 & 0xff]), payload]);
    const message = new Promise<Buffer>((resolve) =>
      client.once('message', (data) => resolve(data as Buffer)),
    );
    const result = closed(client);
    halfFrameSocket!.write(frame.subarray(0, 300));
    await delay(50);
    void target.closeUpgrades(1012, 0, 0);
    await delay(50);
    halfFrameSocket!.write(frame.subarray(300));

    assert.equal((await message).length, 1000);
    assert.deepEqual(await result, { code: 1012, reason: 'service restart' });
  });
});
