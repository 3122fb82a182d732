import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { Duplex } from 'node:stream';
import { afterEach, before, beforeEach, describe, it } from 'node:test';
import pino from 'pino';
import type { SiteConfig } from '../../src/config/schema.ts';
import type { DirectRoute } from '../../src/proxy/direct/exchange.ts';
import { DirectPath } from '../../src/proxy/direct/path.ts';
import type { DirectRequestHead } from '../../src/proxy/direct/request-head.ts';
import { ExchangeLog } from '../../src/proxy/exchange.ts';
import type { CompiledRoute } from '../../src/proxy/router.ts';
import { UpstreamPool } from '../../src/proxy/upstream/pool.ts';
import { RawProxyExchange } from '../../src/proxy/upstream/raw-exchange.ts';
import { requestHead } from '../../src/proxy/upstream/request-head.ts';
import { RouteStats } from '../../src/stats.ts';
import { Target } from '../../src/targets/registry.ts';
import { createSelfSignedCertificate } from '../../src/tls/self-signed.ts';
import { RawClient } from '../support/raw-client.ts';

// Each upstream connection reads into one buffer that it reuses. The upstream here sends a body
// of random bytes in pieces far enough apart to arrive in separate reads. The client socket is
// corked (or its writes stay pending) while they arrive, so every write of a piece stays queued
// as for a congested client. The queued pieces must still contain their own bytes when the socket
// sends them. Pieces of 1000 bytes are always copied before they are written.

const PIECES = 12;
const PIECE_SIZES = [1000, 6000];
const PIECE_GAP_MS = 8;
/** Time by which the upstream has sent every piece and the edge has read them. */
const PIECES_READ_MS = (PIECES + 1) * PIECE_GAP_MS + 150;
/** Size of an upstream connection's read buffer. */
const READ_BUFFER_BYTES = 64 * 1024;
const HEAD_PART = `X-Part: ${'p'.repeat(300)}`;

function listen(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
}

function close(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/**
 * A client socket whose writes stay pending until `release()`, as on a connection whose kernel
 * buffer is full. Each write keeps the Buffer it was given, and its bytes are taken only when it
 * completes.
 */
class PendingSocket extends Duplex {
  readonly remoteAddress = '127.0.0.1';
  readonly remotePort = 40_000;
  readonly sent: Buffer[] = [];
  private readonly pending: Array<{ chunk: Buffer; callback: () => void }> = [];

  setNoDelay(): this {
    return this;
  }

  setTimeout(): this {
    return this;
  }

  setKeepAlive(): this {
    return this;
  }

  override _read(): void {}

  override _write(chunk: Buffer, _encoding: string, callback: () => void): void {
    this.pending.push({ chunk, callback });
  }

  /** Counts the distinct memory blocks of at least `bytes` that unfinished writes point into. */
  blocksHeld(bytes: number): number {
    // Writes behind the pending one wait in the stream's own buffer.
    const state = (
      this as unknown as { _writableState: { getBuffer(): Array<{ chunk: unknown }> } }
    )._writableState;
    const chunks = [
      ...this.pending.map(({ chunk }) => chunk),
      ...state.getBuffer().map(({ chunk }) => chunk),
    ];
    const blocks = new Set(chunks.filter(Buffer.isBuffer).map((chunk) => chunk.buffer));
    return [...blocks].filter((block) => block.byteLength >= bytes).length;
  }

  /** Completes the pending writes with the bytes their Buffers hold now. */
  release(): void {
    while (this.pending.length > 0) {
      const { chunk, callback } = this.pending.shift()!;
      this.sent.push(Buffer.from(chunk));
      callback();
    }
  }

  /** Releases writes every few ms until a response with a `length`-byte body was sent. */
  async drainUntil(length: number): Promise<{ head: string; body: Buffer }> {
    const deadline = Date.now() + 5_000;
    let response = splitResponse(Buffer.concat(this.sent));
    while (response.body.length < length && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      this.release();
      response = splitResponse(Buffer.concat(this.sent));
    }
    return response;
  }
}

/** Splits a response with a Content-Length body into its head and body. */
function splitResponse(bytes: Buffer): { head: string; body: Buffer } {
  const end = bytes.indexOf('\r\n\r\n');
  if (end === -1) return { head: '', body: Buffer.alloc(0) };
  return { head: bytes.toString('latin1', 0, end), body: bytes.subarray(end + 4) };
}

describe('upstream read buffer', () => {
  let bodies: Map<string, Buffer>;
  let upstream: net.Server;
  let upstreamSockets: Set<net.Socket>;
  let pool: UpstreamPool;
  let target: Target;
  let route: CompiledRoute;
  let log: ExchangeLog;
  let pem: { cert: string; key: string };

  before(async () => {
    pem = await createSelfSignedCertificate(['localhost']);
  });

  beforeEach(async () => {
    bodies = new Map(PIECE_SIZES.map((size) => [`/pieces-${size}`, randomBytes(PIECES * size)]));
    upstreamSockets = new Set();
    upstream = net.createServer((socket) => {
      upstreamSockets.add(socket);
      socket.on('close', () => upstreamSockets.delete(socket));
      socket.once('data', (request: Buffer) => {
        const path = request.toString('latin1').split(' ')[1];
        if (path === '/split-head') {
          socket.write(`HTTP/1.1 200 OK\r\n${HEAD_PART}\r\n`);
          setTimeout(() => socket.write('X-Tail: t\r\nContent-Length: 2\r\n\r\nok'), 50);
          return;
        }
        const body = bodies.get(path!)!;
        const size = body.length / PIECES;
        socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`);
        for (let i = 0; i < PIECES; i++) {
          const piece = body.subarray(i * size, (i + 1) * size);
          setTimeout(() => socket.write(piece), (i + 1) * PIECE_GAP_MS);
        }
      });
    });
    await listen(upstream);
    const port = (upstream.address() as AddressInfo).port;
    target = new Target(`http://127.0.0.1:${port}`, 'c1');
    pool = new UpstreamPool({
      host: '127.0.0.1',
      port,
      connectMs: 1_000,
      responseMs: 2_000,
      maxConnections: 2,
      keepAliveMs: 4_000,
    });
    route = {
      site: { name: 'prod' } as SiteConfig,
      name: '/',
      stats: new RouteStats('prod', '/'),
      config: { timeouts: { upstreamMs: 2_000 } },
    } as unknown as CompiledRoute;
    log = new ExchangeLog(pino({ level: 'silent' }), false);
  });

  afterEach(async () => {
    for (const socket of upstreamSockets) socket.destroy();
    await pool.destroy();
    await close(upstream);
  });

  /** Starts `server`, sends GET `path` with a raw client and returns the response. */
  async function fetchThrough(server: http.Server | https.Server, path: string, secure = false) {
    await listen(server);
    try {
      const port = (server.address() as AddressInfo).port;
      const client = secure
        ? await RawClient.connectTls(port, undefined)
        : await RawClient.connect(port);
      client.send(`GET ${path} HTTP/1.1\r\nHost: app.test\r\n\r\n`);
      const response = await client.response();
      client.close();
      return response;
    } finally {
      server.closeAllConnections();
      await close(server);
    }
  }

  /** Uncorks `socket` once the upstream has sent every piece and the edge has read them. */
  function uncorkLater(socket: net.Socket): void {
    setTimeout(() => socket.uncork(), PIECES_READ_MS);
  }

  /** Routes a request head to the upstream on the direct path. */
  function directRoute(head: DirectRequestHead): DirectRoute {
    return {
      route,
      target,
      pool,
      requestHead: requestHead(head.method, head.url, ['host', 'upstream.test']),
      reqId: 'req-1',
      client: '127.0.0.1',
      host: 'app.test',
      hsts: undefined,
    };
  }

  /** Proxies a request of Node's HTTP server to the upstream over the raw client. */
  function proxyOnNodePath(req: http.IncomingMessage, res: http.ServerResponse): void {
    const request = {
      target,
      route,
      host: 'app.test',
      path: req.url!,
      headers: ['host', 'upstream.test'],
      bodyLength: 0,
      hsts: undefined,
    };
    new RawProxyExchange(req, res, log, 'req-1', '127.0.0.1', request, pool).dispatch();
  }

  for (const size of PIECE_SIZES) {
    for (const secure of [false, true]) {
      const scheme = secure ? 'HTTPS' : 'HTTP';
      it(`keeps queued ${size}-byte pieces intact on the ${scheme} direct path`, async () => {
        const server = secure
          ? https.createServer({ cert: pem.cert, key: pem.key }, (_req, res) => res.end('node'))
          : http.createServer((_req, res) => res.end('node'));
        const direct = new DirectPath({
          log,
          firstRequestMs: 5_000,
          keepAliveMs: 1_000,
          router: (head, socket) => {
            socket.cork();
            uncorkLater(socket);
            return directRoute(head);
          },
        });
        direct.attach(server, secure);

        const response = await fetchThrough(server, `/pieces-${size}`, secure);
        direct.closeAllConnections();
        assert.equal(response.status, 200);
        const body = bodies.get(`/pieces-${size}`)!;
        assert.equal(response.body.length, body.length);
        assert.ok(Buffer.from(response.body, 'latin1').equals(body), 'body bytes unchanged');
      });
    }

    it(`keeps queued ${size}-byte pieces intact on Node's path`, async () => {
      const server = http.createServer((req, res) => {
        res.socket!.cork();
        uncorkLater(res.socket!);
        proxyOnNodePath(req, res);
      });

      const response = await fetchThrough(server, `/pieces-${size}`);
      assert.equal(response.status, 200);
      const body = bodies.get(`/pieces-${size}`)!;
      assert.equal(response.body.length, body.length);
      assert.ok(Buffer.from(response.body, 'latin1').equals(body), 'body bytes unchanged');
    });
  }

  for (const path of ['direct', "Node's"] as const) {
    it(`keeps pending-write pieces intact on ${path} path`, async () => {
      const size = 6000;
      const body = bodies.get(`/pieces-${size}`)!;
      const server = http.createServer(proxyOnNodePath);
      const direct = new DirectPath({
        log,
        firstRequestMs: 5_000,
        keepAliveMs: 1_000,
        router: (head) => (path === 'direct' ? directRoute(head) : undefined),
      });
      direct.attach(server, false);
      const socket = new PendingSocket();
      server.emit('connection', socket);
      socket.push(`GET /pieces-${size} HTTP/1.1\r\nHost: app.test\r\n\r\n`);

      // The pieces arrive in separate reads while the first write is still pending.
      await new Promise((resolve) => setTimeout(resolve, PIECES_READ_MS));
      // Pieces behind a pending write are copied, so at most the first references a read buffer.
      const readBuffersHeld = socket.blocksHeld(READ_BUFFER_BYTES);
      const response = await socket.drainUntil(body.length);
      socket.destroy();
      direct.closeAllConnections();

      assert.match(response.head, /^HTTP\/1\.1 200 /);
      assert.equal(response.body.length, body.length);
      assert.ok(response.body.equals(body), 'body bytes unchanged');
      assert.ok(readBuffersHeld <= 1, `pending writes held ${readBuffersHeld} read buffers`);
    });
  }

  it('keeps a head split across reads', async () => {
    const server = http.createServer(proxyOnNodePath);

    const response = await fetchThrough(server, '/split-head');
    assert.equal(response.status, 200);
    assert.equal(response.headers['x-part'], HEAD_PART.slice('X-Part: '.length));
    assert.equal(response.headers['x-tail'], 't');
    assert.equal(response.body, 'ok');
  });
});
