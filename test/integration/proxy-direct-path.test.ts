import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { afterEach, beforeEach, describe, it } from 'node:test';
import pino from 'pino';
import type { SiteConfig } from '../../src/config/schema.ts';
import { DirectPath } from '../../src/proxy/direct/path.ts';
import { ExchangeLog } from '../../src/proxy/exchange.ts';
import type { CompiledRoute } from '../../src/proxy/router.ts';
import { requestHead } from '../../src/proxy/upstream/request-head.ts';
import { createSelfSignedCertificate } from '../../src/tls/self-signed.ts';
import { RawClient } from '../support/raw-client.ts';
import { UpstreamPool } from '../../src/proxy/upstream/pool.ts';
import { RouteStats } from '../../src/stats.ts';
import { Target } from '../../src/targets/registry.ts';

/**
 * The direct path in front of a plain Node server: requests under /direct go to the upstream
 * through it, everything else goes to the server's own `request` listener.
 */
describe('direct data path', () => {
  let upstream: http.Server;
  let upstreamHandler: http.RequestListener;
  let server: http.Server;
  let direct: DirectPath;
  let nodeRequests: { method: string; url: string; body: string }[];
  let pool: UpstreamPool;
  let target: Target;
  let stats: RouteStats;
  let port: number;
  let routedSockets: Socket[];

  beforeEach(async () => {
    upstreamHandler = (req, res) => res.end(`upstream saw ${req.method} ${req.url}`);
    upstream = http.createServer((req, res) => upstreamHandler(req, res));
    await listen(upstream);
    const upstreamPort = (upstream.address() as AddressInfo).port;

    target = new Target(`http://127.0.0.1:${upstreamPort}`, 'c1');
    pool = new UpstreamPool({
      host: '127.0.0.1',
      port: upstreamPort,
      connectMs: 1_000,
      responseMs: 2_000,
      maxConnections: 4,
      keepAliveMs: 4_000,
    });
    stats = new RouteStats('prod', '/direct');
    const route = {
      site: { name: 'prod' } as SiteConfig,
      name: '/direct',
      stats,
      config: { timeouts: { upstreamMs: 2_000 } },
    } as unknown as CompiledRoute;

    nodeRequests = [];
    routedSockets = [];
    server = http.createServer((req, res) => {
      let body = '';
      req.setEncoding('latin1');
      req.on('data', (text: string) => (body += text));
      req.on('end', () => {
        nodeRequests.push({ method: req.method!, url: req.url!, body });
        res.end(`node saw ${req.method} ${req.url} ${body}`);
      });
    });
    direct = new DirectPath({
      log: new ExchangeLog(pino({ level: 'silent' }), false),
      firstRequestMs: 5_000,
      keepAliveMs: 300,
      router: (head, socket) => {
        routedSockets.push(socket);
        if (!head.url.startsWith('/direct')) return undefined;
        return {
          route,
          target,
          pool,
          requestHead: requestHead(head.method, head.url, [
            'host',
            'upstream.test',
            ...(head.hasLength ? ['content-length', String(head.bodyLength)] : []),
          ]),
          reqId: 'req-1',
          client: '127.0.0.1',
          host: 'app.test',
          hsts: undefined,
        };
      },
    });
    direct.attach(server, false);
    await listen(server);
    port = (server.address() as AddressInfo).port;
  });

  afterEach(async () => {
    direct.closeAllConnections();
    server.closeAllConnections();
    upstream.closeAllConnections();
    await pool.destroy();
    await Promise.all([close(server), close(upstream)]);
  });

  it('forwards requests on one connection without the Node server', async () => {
    const client = await RawClient.connect(port);
    client.send('GET /direct/a HTTP/1.1\r\nHost: app.test\r\n\r\n');
    const first = await client.response();
    client.send('GET /direct/b?x=1 HTTP/1.1\r\nHost: app.test\r\n\r\n');
    const second = await client.response();
    client.close();

    assert.equal(first.status, 200);
    assert.equal(first.body, 'upstream saw GET /direct/a');
    assert.equal(first.headers['x-request-id'], 'req-1');
    assert.ok(first.headers.date, 'a Date header');
    assert.equal(second.body, 'upstream saw GET /direct/b?x=1');
    assert.deepEqual(nodeRequests, []);
    assert.equal(stats.requests, 2);
    assert.equal(target.inflight, 0);
  });

  it('answers pipelined requests in order', async () => {
    const client = await RawClient.connect(port);
    client.send(
      'GET /direct/1 HTTP/1.1\r\nHost: a\r\n\r\nGET /direct/2 HTTP/1.1\r\nHost: a\r\n\r\n' +
        'GET /direct/3 HTTP/1.1\r\nHost: a\r\n\r\n',
    );
    const bodies = [];
    for (let i = 0; i < 3; i++) bodies.push((await client.response()).body);
    client.close();

    assert.deepEqual(bodies, [
      'upstream saw GET /direct/1',
      'upstream saw GET /direct/2',
      'upstream saw GET /direct/3',
    ]);
  });

  it('reads client sockets without data events', async () => {
    const client = await RawClient.connect(port);
    client.send('GET /direct/a HTTP/1.1\r\nHost: app.test\r\n\r\n');
    const response = await client.response();
    client.close();

    assert.equal(response.body, 'upstream saw GET /direct/a');
    assert.equal(routedSockets.length, 1);
    // The socket reads into the direct path's shared buffer, so nothing listens for 'data'.
    assert.equal(routedSockets[0]!.listenerCount('data'), 0);
  });

  it('holds a pipelined burst over 64 KiB until the running response ends', async () => {
    upstreamHandler = (req, res) => {
      const delay = req.url === '/direct/slow' ? 150 : 0;
      setTimeout(() => res.end(`upstream saw ${req.method} ${req.url}`), delay);
    };
    const pad = 'p'.repeat(1_000);
    const count = 100;
    let burst = '';
    for (let i = 0; i < count; i++)
      burst += `GET /direct/n${i} HTTP/1.1\r\nHost: a\r\nX-Pad: ${pad}\r\n\r\n`;
    assert.ok(burst.length > 64 * 1024);

    const client = await RawClient.connect(port);
    client.send('GET /direct/slow HTTP/1.1\r\nHost: a\r\n\r\n');
    client.send(burst);
    const bodies = [(await client.response()).body];
    for (let i = 0; i < count; i++) bodies.push((await client.response()).body);
    client.close();

    assert.equal(bodies[0], 'upstream saw GET /direct/slow');
    for (let i = 0; i < count; i++) assert.equal(bodies[i + 1], `upstream saw GET /direct/n${i}`);
    assert.deepEqual(nodeRequests, []);
  });

  it('hands the connection to Node at the first request it does not take', async () => {
    const client = await RawClient.connect(port);
    client.send('GET /direct/a HTTP/1.1\r\nHost: a\r\n\r\n');
    assert.equal((await client.response()).body, 'upstream saw GET /direct/a');

    // A body, and right behind it a request the direct path would take: Node keeps both.
    client.send(
      'POST /form HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello' +
        'GET /direct/b HTTP/1.1\r\nHost: a\r\n\r\n',
    );
    const posted = await client.response();
    const after = await client.response();
    client.close();

    assert.equal(posted.body, 'node saw POST /form hello');
    assert.equal(after.body, 'node saw GET /direct/b ');
    assert.deepEqual(
      nodeRequests.map((request) => request.url),
      ['/form', '/direct/b'],
    );
  });

  it('leaves a head that arrives in pieces to Node', async () => {
    const client = await RawClient.connect(port);
    client.send('GET /direct/slow HTTP/1.1\r\nHo');
    await new Promise((resolve) => setTimeout(resolve, 50));
    client.send('st: a\r\n\r\n');
    const response = await client.response();
    client.close();

    assert.equal(response.body, 'node saw GET /direct/slow ');
  });

  it('forwards small request bodies without the Node server', async () => {
    upstreamHandler = (req, res) => {
      let body = '';
      req.setEncoding('latin1');
      req.on('data', (text: string) => (body += text));
      req.on('end', () => res.end(`upstream saw ${req.method} ${req.url} ${body}`));
    };
    const client = await RawClient.connect(port);
    client.send(
      'POST /direct/form HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\n\r\nname=test' +
        'PUT /direct/item HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}' +
        'GET /direct/after HTTP/1.1\r\nHost: a\r\n\r\n',
    );
    const posted = await client.response();
    const put = await client.response();
    const after = await client.response();
    client.send(
      `PATCH /direct/big HTTP/1.1\r\nHost: a\r\nContent-Length: 16384\r\n\r\n${'b'.repeat(16_384)}`,
    );
    const big = await client.response();
    client.close();

    assert.equal(posted.body, 'upstream saw POST /direct/form name=test');
    assert.equal(put.body, 'upstream saw PUT /direct/item {}');
    assert.equal(after.body, 'upstream saw GET /direct/after ');
    assert.equal(big.body, `upstream saw PATCH /direct/big ${'b'.repeat(16_384)}`);
    assert.deepEqual(nodeRequests, []);
    assert.equal(stats.requests, 4);
    assert.equal(target.inflight, 0);
  });

  it('leaves a body that arrives in pieces to Node', async () => {
    const client = await RawClient.connect(port);
    client.send('POST /direct/slow HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n\r\nab');
    await new Promise((resolve) => setTimeout(resolve, 50));
    client.send('cdef');
    const response = await client.response();
    client.close();

    assert.equal(response.body, 'node saw POST /direct/slow abcdef');
    assert.deepEqual(nodeRequests, [{ method: 'POST', url: '/direct/slow', body: 'abcdef' }]);
  });

  it('leaves a body over 16 KiB to Node', async () => {
    const client = await RawClient.connect(port);
    const body = 'c'.repeat(16_385);
    client.send(
      `POST /direct/large HTTP/1.1\r\nHost: a\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    );
    const response = await client.response();
    client.close();

    assert.equal(response.body, `node saw POST /direct/large ${body}`);
    assert.equal(stats.requests, 0);
  });

  it('passes a chunked upstream body on in chunks', async () => {
    upstreamHandler = (_req, res) => {
      res.write('first ');
      setTimeout(() => res.end('second'), 20);
    };
    const client = await RawClient.connect(port);
    client.send('GET /direct/stream HTTP/1.1\r\nHost: a\r\n\r\n');
    const response = await client.response();
    client.send('GET /direct/again HTTP/1.1\r\nHost: a\r\n\r\n');
    const again = await client.response();
    client.close();

    assert.equal(response.headers['transfer-encoding'], 'chunked');
    assert.equal(response.body, 'first second');
    assert.equal(again.body, 'first second');
  });

  it('sends no body for HEAD and keeps the length', async () => {
    upstreamHandler = (req, res) => {
      const body = `upstream saw ${req.method} ${req.url}`;
      res.writeHead(200, { 'content-length': Buffer.byteLength(body) }).end(body);
    };
    const client = await RawClient.connect(port);
    client.send('HEAD /direct/h HTTP/1.1\r\nHost: a\r\n\r\n');
    const head = await client.response({ head: true });
    client.send('GET /direct/g HTTP/1.1\r\nHost: a\r\n\r\n');
    const next = await client.response();
    client.close();

    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], String('upstream saw HEAD /direct/h'.length));
    assert.equal(head.body, '');
    assert.equal(next.body, 'upstream saw GET /direct/g');
  });

  it('answers 502 when the upstream is down and keeps the connection', async () => {
    upstream.closeAllConnections();
    await close(upstream);
    const client = await RawClient.connect(port);
    client.send('GET /direct/down HTTP/1.1\r\nHost: a\r\n\r\n');
    const failed = await client.response();
    client.send('GET /other HTTP/1.1\r\nHost: a\r\n\r\n');
    const other = await client.response();
    client.close();

    assert.equal(failed.status, 502);
    assert.match(failed.body, /^502 Bad Gateway\n/);
    assert.equal(failed.headers['x-request-id'], 'req-1');
    assert.equal(failed.headers['cache-control'], 'no-store');
    assert.equal(other.body, 'node saw GET /other ');
    assert.equal(stats.statusClasses[5], 1);
    assert.equal(target.inflight, 0);
  });

  it('cuts the connection and sends nothing more after an upstream fails mid-body', async () => {
    upstreamHandler = (req, res) => {
      if (req.url === '/direct/victim') {
        res.end('victim');
        return;
      }
      res.writeHead(200, { 'content-length': 100_000 });
      res.write('x'.repeat(5_000), () => res.socket?.resetAndDestroy());
    };
    const seen: string[] = [];
    upstream.on('request', (req: http.IncomingMessage) => seen.push(req.url!));
    const client = await RawClient.connect(port);
    client.send(
      'GET /direct/reset HTTP/1.1\r\nHost: a\r\n\r\nDELETE /direct/victim HTTP/1.1\r\nHost: a\r\n\r\n',
    );

    await client.closedByServer(2_000);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual(seen, ['/direct/reset'], 'the pipelined request was not forwarded');
    assert.equal(stats.requests, 1);
  });

  it('releases the target when the client leaves mid-response', async () => {
    let sent!: () => void;
    const started = new Promise<void>((resolve) => (sent = resolve));
    upstreamHandler = (_req, res) => {
      res.write('part');
      sent();
    };
    const client = await RawClient.connect(port);
    client.send('GET /direct/long HTTP/1.1\r\nHost: a\r\n\r\n');
    await started;
    assert.equal(target.inflight, 1);
    client.close();

    await waitFor(() => target.inflight === 0 && stats.requests === 1);
    assert.equal(stats.statusClasses[4], 1, 'counted as client closed (499)');
  });

  it('closes an idle connection after the keep-alive time', async () => {
    const client = await RawClient.connect(port);
    client.send('GET /direct/a HTTP/1.1\r\nHost: a\r\n\r\n');
    await client.response();

    await client.closedByServer(2_000);
  });

  it('asks clients to close while shutting down, and closes idle connections', async () => {
    const idle = await RawClient.connect(port);
    idle.send('GET /direct/a HTTP/1.1\r\nHost: a\r\n\r\n');
    await idle.response();
    const busy = await RawClient.connect(port);
    let release!: () => void;
    upstreamHandler = (_req, res) => {
      release = () => res.end('late');
    };
    busy.send('GET /direct/slow HTTP/1.1\r\nHost: a\r\n\r\n');
    await waitFor(() => release !== undefined);

    direct.closeIdleConnections();
    await idle.closedByServer(1_000);
    release();
    const response = await busy.response();
    assert.equal(response.body, 'late');
    assert.equal(response.headers.connection, 'close');
    await busy.closedByServer(1_000);
  });
});

describe('direct data path behind TLS', () => {
  it('forwards over TLS and hands the session to the HTTPS server', async () => {
    const upstream = http.createServer((req, res) => res.end(`upstream saw ${req.url}`));
    await listen(upstream);
    const upstreamPort = (upstream.address() as AddressInfo).port;
    const pool = new UpstreamPool({
      host: '127.0.0.1',
      port: upstreamPort,
      connectMs: 1_000,
      responseMs: 2_000,
      maxConnections: 2,
      keepAliveMs: 4_000,
    });
    const target = new Target(`http://127.0.0.1:${upstreamPort}`, 'c1');
    const route = {
      site: { name: 'prod' } as SiteConfig,
      name: '/',
      stats: new RouteStats('prod', '/'),
      config: { timeouts: { upstreamMs: 2_000 } },
    } as unknown as CompiledRoute;
    const pem = await createSelfSignedCertificate(['localhost']);
    const server = https.createServer({ cert: pem.cert, key: pem.key }, (req, res) =>
      res.end(`node saw ${req.method} ${req.url} over ${req.socket.constructor.name}`),
    );
    const secureFlags: boolean[] = [];
    const dataListeners: number[] = [];
    const direct = new DirectPath({
      log: new ExchangeLog(pino({ level: 'silent' }), false),
      firstRequestMs: 5_000,
      keepAliveMs: 5_000,
      router: (head, socket, secure) => {
        secureFlags.push(secure);
        dataListeners.push(socket.listenerCount('data'));
        if (head.url !== '/direct') return undefined;
        return {
          route,
          target,
          pool,
          requestHead: requestHead(head.method, head.url, ['host', 'upstream.test']),
          reqId: 'tls-1',
          client: '127.0.0.1',
          host: 'localhost',
          hsts: 'max-age=60',
        };
      },
    });
    direct.attach(server, true);
    await listen(server);
    const port = (server.address() as AddressInfo).port;

    try {
      const client = await RawClient.connectTls(port, pem.cert);
      client.send('GET /direct HTTP/1.1\r\nHost: localhost\r\n\r\n');
      const proxied = await client.response();
      client.send('OPTIONS * HTTP/1.1\r\nHost: localhost\r\n\r\n');
      const handed = await client.response();
      client.close();

      assert.equal(proxied.body, 'upstream saw /direct');
      assert.equal(proxied.headers['strict-transport-security'], 'max-age=60');
      assert.equal(handed.body, 'node saw OPTIONS * over TLSSocket');
      assert.deepEqual(secureFlags, [true, true]);
      // The TLS socket reads into the shared buffer too, until the hand-off.
      assert.equal(dataListeners[0], 0);
    } finally {
      direct.closeAllConnections();
      server.closeAllConnections();
      upstream.closeAllConnections();
      await pool.destroy();
      await Promise.all([close(server), close(upstream)]);
    }
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail('condition not reached');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function listen(server: http.Server | https.Server): Promise<void> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
}

function close(server: http.Server | https.Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) resolve();
    else server.close(() => resolve());
  });
}
