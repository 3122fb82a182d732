import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import {
  httpRequest,
  httpsRequest,
  listenUpstream,
  rawExchange,
  startTestEdge,
  startUpstream,
  statusOf,
  waitUntil,
  type TestEdge,
  type TestUpstream,
} from '../support/upstreams.ts';

/** Starts an HTTP server with a ws echo on every path that records each handshake's headers. */
async function startEcho(): Promise<TestUpstream & { handshakes: http.IncomingHttpHeaders[] }> {
  const handshakes: http.IncomingHttpHeaders[] = [];
  const server = http.createServer((_req, res) => res.end('not a websocket'));
  const wss = new WebSocketServer({ noServer: true });
  wss.on('connection', (socket) => socket.on('message', (data) => socket.send(data)));
  server.on('upgrade', (req, socket, head) => {
    handshakes.push(req.headers);
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });
  const upstream = await listenUpstream(server);
  return {
    ...upstream,
    handshakes,
    async close() {
      for (const client of wss.clients) client.terminate();
      await upstream.close();
    },
  };
}

describe('proxy plain HTTP for sites with http serve', () => {
  let edge: TestEdge;
  let upstream: TestUpstream;
  let echo: Awaited<ReturnType<typeof startEcho>>;

  before(async () => {
    upstream = await startUpstream((req, res) => res.end(`served ${req.url}`));
    echo = await startEcho();
    const routes = [
      { path: '/ws', upstream: echo.origin },
      { path: '/', upstream: upstream.origin },
    ];
    edge = await startTestEdge({
      listen: { redirectPort: 8443 },
      sites: [
        // A site named prod sends HSTS by default, which port 80 must leave out.
        { name: 'prod', hosts: ['app.example.test'], http: 'serve', routes },
        { name: 'staging', hosts: ['staging.example.test'], routes },
      ],
    });
    edge.challenges.set('app.example.test tok123', 'tok123.thumbprint');
  });

  after(async () => {
    await edge.stop();
    await upstream.close();
    await echo.close();
  });

  it('proxies with X-Forwarded-Proto http and no HSTS', async () => {
    const response = await httpRequest(edge.httpPort, {
      path: '/a?b=1',
      headers: { 'x-forwarded-proto': 'https' },
    });
    assert.equal(response.status, 200);
    assert.equal(response.body, 'served /a?b=1');
    assert.equal(response.headers['strict-transport-security'], undefined);
    assert.match(String(response.headers['x-request-id']), /./);

    const received = upstream.requests.at(-1)!;
    assert.equal(received.headers['x-forwarded-proto'], 'http');
    assert.equal(received.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(received.headers.host, 'app.example.test');
  });

  it('keeps HSTS for the same site over HTTPS', async () => {
    const response = await httpsRequest(edge.httpsPort, { path: '/a' });
    assert.equal(response.status, 200);
    assert.equal(response.headers['strict-transport-security'], 'max-age=31536000');
    assert.equal(upstream.requests.at(-1)!.headers['x-forwarded-proto'], 'https');
  });

  it('writes an access line for a request served on port 80', async () => {
    const response = await httpRequest(edge.httpPort, { path: '/logged' });
    const id = response.headers['x-request-id'];
    await waitUntil(() => edge.logs.some((entry) => entry.reqId === id), 2_000, 'access line');
    const line = edge.logs.find((entry) => entry.msg === 'request' && entry.reqId === id)!;
    assert.equal(line.site, 'prod');
    assert.equal(line.route, '/');
    assert.equal(line.status, 200);
    assert.equal(line.upstream, upstream.origin);
  });

  it('still redirects a site without http serve with 308', async () => {
    const before = upstream.requests.length;
    const response = await httpRequest(edge.httpPort, { host: 'staging.example.test', path: '/a' });
    assert.equal(response.status, 308);
    assert.equal(response.headers.location, 'https://staging.example.test:8443/a');
    assert.equal(upstream.requests.length, before);
  });

  it('answers an ACME challenge before serving the site', async () => {
    const before = upstream.requests.length;
    const known = await httpRequest(edge.httpPort, { path: '/.well-known/acme-challenge/tok123' });
    const unknown = await httpRequest(edge.httpPort, { path: '/.well-known/acme-challenge/other' });
    assert.equal(known.status, 200);
    assert.equal(known.body, 'tok123.thumbprint');
    assert.equal(unknown.status, 404);
    assert.equal(upstream.requests.length, before);
  });

  it('serves the edge API instead of redirecting it', async () => {
    const response = await httpRequest(edge.httpPort, { path: '/_edge/no-such-endpoint' });
    assert.equal(response.status, 404);
    assert.equal(response.headers.location, undefined);
  });

  it('answers an unknown host with 421 as before', async () => {
    const response = await httpRequest(edge.httpPort, { host: 'other.example.test' });
    assert.equal(response.status, 421);
  });

  it('sends 100 Continue for a served upload and forwards its body', async () => {
    const raw = await rawExchange(
      edge.httpPort,
      'POST /upload HTTP/1.1\r\nHost: app.example.test\r\nContent-Length: 4\r\nExpect: 100-continue\r\nConnection: close\r\n\r\ndata',
    );
    assert.equal(statusOf(raw), 100);
    assert.match(raw, /\r\n\r\nHTTP\/1\.1 200 OK\r\n/);
    const received = upstream.requests.at(-1)!;
    assert.equal(received.url, '/upload');
    assert.equal(received.body.toString(), 'data');
    assert.equal(received.headers.expect, undefined);
  });

  it('relays a WebSocket on port 80 with X-Forwarded-Proto http', async () => {
    const client = new WebSocket(`ws://127.0.0.1:${edge.httpPort}/ws/chat`, {
      headers: { host: 'app.example.test' },
    });
    await new Promise<void>((resolve, reject) => {
      client.once('open', () => resolve());
      client.once('error', reject);
    });
    const echoed = new Promise<string>((resolve) =>
      client.once('message', (data) => resolve(data.toString())),
    );
    client.send('hello');
    assert.equal(await echoed, 'hello');
    client.close();
    assert.equal(echo.handshakes.at(-1)!['x-forwarded-proto'], 'http');
  });

  it('serves h2c upgrade requests as plain requests', async () => {
    // curl --http2 on an http:// URL sends this head.
    const head =
      'GET /h2c HTTP/1.1\r\nHost: app.example.test\r\nConnection: Upgrade, HTTP2-Settings\r\n' +
      'Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n';
    const plain = await rawExchange(edge.httpPort, head);
    const secure = await rawExchange(edge.httpsPort, head, {
      tls: { servername: 'app.example.test' },
    });

    for (const raw of [plain, secure]) {
      assert.equal(statusOf(raw), 200, raw);
      assert.match(raw, /served \/h2c$/);
    }
    const forwarded = upstream.requests.filter((request) => request.url === '/h2c');
    assert.equal(forwarded.length, 2);
    assert.equal(forwarded[0]!.headers.upgrade, undefined, 'the upgrade is not passed on');
  });

  it('still redirects a WebSocket handshake of a redirected site', async () => {
    const raw = await rawExchange(
      edge.httpPort,
      'GET /ws/ HTTP/1.1\r\nHost: staging.example.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    );
    assert.equal(statusOf(raw), 308);
  });
});
