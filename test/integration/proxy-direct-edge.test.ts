import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { RawClient } from '../support/raw-client.ts';
import {
  startTestEdge,
  startUpstream,
  waitUntil,
  type TestEdge,
  type TestUpstream,
} from '../support/upstreams.ts';

/**
 * One keep-alive connection through the whole edge: proxied GETs take the direct path, and the
 * first request it does not take moves the connection to Node's server without losing a byte.
 */
describe('direct path in the edge', () => {
  let edge: TestEdge;
  let upstream: TestUpstream;
  let staticDir: string;

  before(async () => {
    staticDir = mkdtempSync(path.join(tmpdir(), 'edge-direct-'));
    writeFileSync(path.join(staticDir, 'index.html'), '<p>front</p>');
    writeFileSync(path.join(staticDir, 'big.bin'), Buffer.alloc(200_000, 'b'));
    upstream = await startUpstream((req, res, body) => {
      const delayMs = req.url === '/api/slow' ? 300 : 0;
      setTimeout(() => res.end(`${req.method} ${req.url} ${body.toString()}`), delayMs);
    });
    edge = await startTestEdge({
      sites: [
        {
          name: 'prod',
          hosts: ['app.example.test'],
          http: 'serve',
          routes: [
            { path: '/api/', upstream: upstream.origin },
            { path: '/', static: staticDir },
          ],
        },
      ],
    });
  });

  after(async () => {
    await edge.stop();
    await upstream.close();
    rmSync(staticDir, { recursive: true, force: true });
  });

  for (const [listener, secure] of [
    ['HTTPS', true],
    ['plain HTTP', false],
  ] as const) {
    it(`serves proxied, static and upload requests on one ${listener} connection`, async () => {
      const port = secure ? edge.httpsPort : edge.httpPort;
      const client = secure
        ? await RawClient.connectTls(port, undefined, 'app.example.test')
        : await RawClient.connect(port);
      const host = 'Host: app.example.test\r\n';

      client.send(`GET /api/one HTTP/1.1\r\n${host}\r\n`);
      const one = await client.response();
      client.send(`GET /index.html HTTP/1.1\r\n${host}\r\n`);
      const front = await client.response();
      client.send(
        `POST /api/form HTTP/1.1\r\n${host}Content-Length: 5\r\n\r\nhelloGET /api/two HTTP/1.1\r\n${host}\r\n`,
      );
      const posted = await client.response();
      const two = await client.response();
      client.close();

      assert.equal(one.body, 'GET /api/one ');
      assert.equal(front.body, '<p>front</p>');
      assert.equal(posted.body, 'POST /api/form hello');
      assert.equal(two.body, 'GET /api/two ');
      const forwarded = upstream.requests.slice(-3);
      assert.deepEqual(
        forwarded.map((request) => request.headers['x-forwarded-proto']),
        Array(3).fill(secure ? 'https' : 'http'),
      );
      assert.equal(
        one.headers['strict-transport-security'],
        secure ? 'max-age=31536000' : undefined,
      );
      assert.match(one.headers['x-request-id'] ?? '', /^[0-9a-f]{16}-\d+$/);
      // The static request was read by the direct path first, then by Node's server: one id.
      const counter = (response: { headers: Record<string, string> }) =>
        Number(response.headers['x-request-id']!.split('-')[1]);
      assert.equal(counter(front), counter(one) + 1, 'no id is spent on a handed-off request');

      await waitUntil(() => accessLines(edge, '/api/two').length > 0);
      assert.equal(accessLines(edge, '/api/one').at(-1)?.status, 200);
      assert.equal(accessLines(edge, '/api/one').at(-1)?.route, '/api/');
    });
  }

  for (const [listener, secure] of [
    ['HTTPS', true],
    ['plain HTTP', false],
  ] as const) {
    const connect = () =>
      secure
        ? RawClient.connectTls(edge.httpsPort, undefined, 'app.example.test')
        : RawClient.connect(edge.httpPort);
    const host = 'Host: app.example.test\r\n';
    const slowPost = `POST /api/slow HTTP/1.1\r\n${host}Content-Length: 5\r\n\r\nhello`;

    it(`answers a pipelined h2c upgrade after the response before it (${listener})`, async () => {
      const client = await connect();
      client.send(
        `${slowPost}GET /api/h2 HTTP/1.1\r\n${host}Connection: Upgrade\r\nUpgrade: h2c\r\n\r\n`,
      );
      const posted = await client.response();
      const ignored = await client.response();
      client.close();

      assert.equal(posted.body, 'POST /api/slow hello');
      assert.equal(ignored.body, 'GET /api/h2 ');
      // The edge is still up.
      const next = await connect();
      next.send(`GET /api/after HTTP/1.1\r\n${host}\r\n`);
      assert.equal((await next.response()).body, 'GET /api/after ');
      next.close();
    });

    it(`finishes a large static file before a pipelined upgrade (${listener})`, async () => {
      const client = await connect();
      client.send(
        `GET /big.bin HTTP/1.1\r\n${host}\r\nGET /api/h2 HTTP/1.1\r\n${host}Connection: Upgrade\r\nUpgrade: h2c\r\n\r\n`,
      );
      const file = await client.response();
      const ignored = await client.response();
      client.close();

      assert.equal(file.status, 200);
      assert.equal(file.body.length, 200_000);
      assert.equal(ignored.body, 'GET /api/h2 ');
    });

    it(`answers a closing request and drops what follows it (${listener})`, async () => {
      const client = await connect();
      client.send(
        `GET /index.html HTTP/1.1\r\n${host}Connection: close\r\n\r\nGET /index.html HTTP/1.1\r\n${host}\r\n`,
      );
      const front = await client.response();
      await client.closedByServer(2_000);

      assert.equal(front.status, 200);
      assert.equal(front.body, '<p>front</p>');
      assert.equal(front.headers.connection, 'close');
    });

    it(`answers a pipelined WebSocket upgrade after the response before it (${listener})`, async () => {
      const client = await connect();
      client.send(
        `${slowPost}GET /api/ws HTTP/1.1\r\n${host}Connection: Upgrade\r\nUpgrade: websocket\r\n` +
          'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
      );
      const posted = await client.response();
      // The upstream serves the upgrade as a plain request, and the edge relays its response.
      const relayed = await client.response();
      client.close();

      assert.equal(posted.body, 'POST /api/slow hello');
      assert.equal(relayed.body, 'GET /api/ws ');
    });
  }

  it('hands an unknown host to Node on the same connection', async () => {
    const client = await RawClient.connectTls(edge.httpsPort, undefined, 'app.example.test');
    client.send('GET /api/x HTTP/1.1\r\nHost: app.example.test\r\n\r\n');
    await client.response();
    client.send('GET /api/y HTTP/1.1\r\nHost: other.example.test\r\n\r\n');
    const misdirected = await client.response();
    client.close();

    assert.equal(misdirected.status, 421);
  });

  it('closes idle direct connections when the edge stops', async () => {
    const second = await startTestEdge({
      sites: [
        {
          name: 'prod',
          hosts: ['app.example.test'],
          routes: [{ path: '/', upstream: upstream.origin }],
        },
      ],
    });
    const client = await RawClient.connectTls(second.httpsPort, undefined, 'app.example.test');
    client.send('GET /api/x HTTP/1.1\r\nHost: app.example.test\r\n\r\n');
    assert.equal((await client.response()).status, 200);

    const started = Date.now();
    await second.stop();
    await client.closedByServer(2_000);
    assert.ok(Date.now() - started < 2_000, 'the stop did not wait for the idle connection');
  });
});

function accessLines(edge: TestEdge, url: string): Record<string, unknown>[] {
  return edge.logs.filter((line) => line.msg === 'request' && line.path === url);
}
