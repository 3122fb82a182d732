import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  httpsRequest,
  oneSite,
  rawExchange,
  startTestEdge,
  startUpstream,
  statusOf,
  type TestEdge,
  type TestUpstream,
} from '../support/upstreams.ts';

/** The UTF-8 bytes of `café` (63 61 66 c3 a9) as Node holds raw header bytes: one char per byte. */
const UTF8_CAFE_AS_LATIN1 = Buffer.from('café').toString('latin1');

describe('proxy forwarding headers', () => {
  let edge: TestEdge;
  let upstream: TestUpstream;

  before(async () => {
    upstream = await startUpstream((req, res) => {
      // A Buffer body keeps Node from writing the head together with a UTF-8 string body,
      // which would re-encode header bytes above 127 before they reach the edge.
      if (req.url === '/bytes') res.setHeader('X-U', UTF8_CAFE_AS_LATIN1);
      res.end(Buffer.from(JSON.stringify(req.headers)));
    });
    edge = await startTestEdge({
      sites: [
        {
          name: 'prod',
          hosts: ['app.example.test'],
          routes: [{ path: '/', upstream: upstream.origin }],
        },
        {
          name: 'staging',
          hosts: ['staging.example.test'],
          hsts: true,
          routes: [{ path: '/', upstream: upstream.origin }],
        },
        {
          name: 'preview',
          hosts: ['preview.example.test'],
          routes: [{ path: '/', upstream: upstream.origin }],
        },
      ],
    });
  });

  after(async () => {
    await edge.stop();
    await upstream.close();
  });

  it('replaces forged X-Forwarded-For and X-Real-IP with the real peer', async () => {
    const raw = await rawExchange(
      edge.httpsPort,
      'GET /api/whoami HTTP/1.1\r\nHost: app.example.test\r\nX-Forwarded-For: 10.0.0.5, 127.0.0.1\r\nX-Real-IP: 127.0.0.9\r\nConnection: close\r\n\r\n',
      { tls: { servername: 'app.example.test' } },
    );
    assert.equal(statusOf(raw), 200);
    const received = upstream.requests.at(-1)!;
    assert.equal(received.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(received.headers['x-real-ip'], '127.0.0.1');
    assert.equal(
      received.rawHeaders.filter((name) => name.toLowerCase() === 'x-forwarded-for').length,
      1,
    );
  });

  it('logs the socket peer as the client, not a forged header', async () => {
    await httpsRequest(edge.httpsPort, {
      path: '/whoami',
      headers: { 'x-forwarded-for': '198.51.100.77' },
    });
    const line = edge.logs
      .filter((entry) => entry.msg === 'request' && entry.path === '/whoami')
      .at(-1);
    assert.equal(line?.client, '127.0.0.1');
  });

  it('sends X-Forwarded-Proto https over TLS, replacing a client value', async () => {
    await httpsRequest(edge.httpsPort, { headers: { 'x-forwarded-proto': 'http' } });
    const received = upstream.requests.at(-1)!;
    assert.equal(received.headers['x-forwarded-proto'], 'https');
    assert.equal(
      received.rawHeaders.filter((name) => name.toLowerCase() === 'x-forwarded-proto').length,
      1,
    );
  });

  it('preserves Host and sets X-Forwarded-Host', async () => {
    await httpsRequest(edge.httpsPort, {
      host: 'App.Example.test:8443',
      servername: 'app.example.test',
    });
    const received = upstream.requests.at(-1)!;
    assert.equal(received.headers.host, 'App.Example.test:8443');
    assert.equal(received.headers['x-forwarded-host'], 'App.Example.test:8443');
  });

  it('passes header bytes above 127 unchanged both ways', async () => {
    const raw = await rawExchange(
      edge.httpsPort,
      Buffer.concat([
        Buffer.from('GET /bytes HTTP/1.1\r\nHost: app.example.test\r\nX-Hi: '),
        Buffer.from('café'),
        Buffer.from('\r\nConnection: close\r\n\r\n'),
      ]),
      { tls: { servername: 'app.example.test' } },
    );
    assert.equal(statusOf(raw), 200);
    assert.equal(upstream.requests.at(-1)!.headers['x-hi'], UTF8_CAFE_AS_LATIN1);
    assert.match(raw, new RegExp(`\r\nX-U: ${UTF8_CAFE_AS_LATIN1}\r\n`, 'i'));
  });

  it('generates a request id, sends it upstream and returns it', async () => {
    const response = await httpsRequest(edge.httpsPort);
    const id = response.headers['x-request-id'];
    assert.match(String(id), /^[0-9a-f]{16}-\d+$/);
    assert.equal(upstream.requests.at(-1)!.headers['x-request-id'], id);

    const next = await httpsRequest(edge.httpsPort);
    assert.notEqual(next.headers['x-request-id'], id);
  });

  it('passes a client request id through', async () => {
    const response = await httpsRequest(edge.httpsPort, {
      headers: { 'x-request-id': 'ci-run-42.7' },
    });
    assert.equal(response.headers['x-request-id'], 'ci-run-42.7');
    assert.equal(upstream.requests.at(-1)!.headers['x-request-id'], 'ci-run-42.7');
  });

  it('sends HSTS for prod by default and for sites that ask for it', async () => {
    const prod = await httpsRequest(edge.httpsPort, { host: 'app.example.test' });
    const staging = await httpsRequest(edge.httpsPort, { host: 'staging.example.test' });
    const preview = await httpsRequest(edge.httpsPort, { host: 'preview.example.test' });
    assert.equal(prod.headers['strict-transport-security'], 'max-age=31536000');
    assert.equal(staging.headers['strict-transport-security'], 'max-age=31536000');
    assert.equal(preview.headers['strict-transport-security'], undefined);
  });

  it('writes one access line per request with the fixed fields', async () => {
    const response = await httpsRequest(edge.httpsPort, { path: '/logged?x=1' });
    const id = response.headers['x-request-id'];
    const lines = edge.logs.filter((entry) => entry.msg === 'request' && entry.reqId === id);
    assert.equal(lines.length, 1);
    const line = lines[0]!;
    for (const field of [
      'time',
      'reqId',
      'site',
      'route',
      'method',
      'host',
      'path',
      'status',
      'durationMs',
      'bytes',
      'upstream',
      'client',
    ]) {
      assert.ok(field in line, field);
    }
    assert.equal(line.site, 'prod');
    assert.equal(line.route, '/');
    assert.equal(line.path, '/logged?x=1');
    assert.equal(line.status, 200);
    assert.equal(line.upstream, upstream.origin);
    assert.equal(line.bytes, response.body.length);
  });
});

describe('proxy trusted proxies', () => {
  let edge: TestEdge;
  let upstream: TestUpstream;

  before(async () => {
    upstream = await startUpstream();
    edge = await startTestEdge({
      trustedProxies: ['127.0.0.0/8'],
      log: { access: false },
      ...oneSite(upstream.origin),
    });
  });

  after(async () => {
    await edge.stop();
    await upstream.close();
  });

  it('extends the forwarding headers of a trusted peer', async () => {
    await httpsRequest(edge.httpsPort, {
      headers: {
        'x-forwarded-for': '198.51.100.1',
        'x-real-ip': '198.51.100.1',
        'x-forwarded-proto': 'https',
      },
    });
    const received = upstream.requests.at(-1)!;
    assert.equal(received.headers['x-forwarded-for'], '198.51.100.1, 127.0.0.1');
    assert.equal(received.headers['x-real-ip'], '198.51.100.1');
  });

  it('writes no access line when access logging is off', async () => {
    await httpsRequest(edge.httpsPort);
    assert.equal(edge.logs.filter((entry) => entry.msg === 'request').length, 0);
  });
});
