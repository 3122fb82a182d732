import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  httpRequest,
  rawExchange,
  startTestEdge,
  startUpstream,
  statusOf,
  twoSites,
  type TestEdge,
  type TestUpstream,
} from '../support/upstreams.ts';

describe('proxy plain HTTP listener', () => {
  let edge: TestEdge;
  let upstream: TestUpstream;

  before(async () => {
    upstream = await startUpstream();
    edge = await startTestEdge({
      ...twoSites([{ path: '/', upstream: upstream.origin }]),
      listen: { redirectPort: 8443 },
    });
    edge.challenges.set('app.example.test tok123', 'tok123.thumbprint');
  });

  after(async () => {
    await edge.stop();
    await upstream.close();
  });

  it('redirects to HTTPS with 308, keeping path and query', async () => {
    const response = await httpRequest(edge.httpPort, {
      path: '/a/b%20c?x=1&y=%2F',
      method: 'POST',
      body: 'data',
    });
    assert.equal(response.status, 308);
    assert.equal(response.headers.location, 'https://app.example.test:8443/a/b%20c?x=1&y=%2F');
    assert.equal(upstream.requests.length, 0);
  });

  it('rejects a deploy request in clear text instead of redirecting it', async () => {
    const paths = [
      '/_edge/deploy',
      '/_EDGE/deploy/abc',
      '/x/../_edge/deploy?y=1',
      '/_edge/rollback',
      '/_edge/deploys',
    ];
    for (const path of paths) {
      const response = await httpRequest(edge.httpPort, {
        path,
        method: 'POST',
        body: '{"service":"web"}',
        headers: { 'x-edge-signature': 'sha256=00', 'x-edge-timestamp': '1' },
      });
      assert.equal(response.status, 403, path);
      assert.equal(response.headers.location, undefined, path);
      assert.match(response.body, /the deploy API is served over HTTPS only/);
    }
    const admin = await httpRequest(edge.httpPort, { path: '/_edge/' });
    assert.equal(admin.status, 308, 'the admin page still redirects');
  });

  it('redirects a client that claims X-Forwarded-Proto https instead of proxying it', async () => {
    const response = await httpRequest(edge.httpPort, {
      path: '/api/whoami',
      headers: { 'x-forwarded-proto': 'https' },
    });
    assert.equal(response.status, 308);
    assert.equal(upstream.requests.length, 0);
  });

  it('answers a pending ACME challenge with the key authorization only', async () => {
    const raw = await rawExchange(
      edge.httpPort,
      "GET /.well-known/acme-challenge/tok123 HTTP/1.1\r\nHost: app.example.test\r\nUser-Agent: Mozilla/5.0 (compatible; Let's Encrypt validation server)\r\nAccept: */*\r\nConnection: close\r\n\r\n",
    );
    assert.equal(statusOf(raw), 200);
    assert.doesNotMatch(raw, /\r\nlocation:/i);
    assert.match(raw, /\r\ncontent-type: text\/plain\r\n/i);
    assert.equal(raw.slice(raw.indexOf('\r\n\r\n') + 4), 'tok123.thumbprint');
  });

  it('answers the challenge for Host in upper case and with port 80', async () => {
    for (const host of ['APP.EXAMPLE.TEST', 'app.example.test:80']) {
      const response = await httpRequest(edge.httpPort, {
        host,
        path: '/.well-known/acme-challenge/tok123',
      });
      assert.equal(response.status, 200, host);
      assert.equal(response.body, 'tok123.thumbprint');
    }
  });

  it('answers an unknown token with a plain 404, never a redirect', async () => {
    for (const token of ['nosuch', 'tok123/extra', '']) {
      const response = await httpRequest(edge.httpPort, {
        path: `/.well-known/acme-challenge/${token}`,
      });
      assert.equal(response.status, 404, token);
      assert.equal(response.headers.location, undefined);
      assert.match(response.headers['content-type'] ?? '', /^text\/plain/);
    }
  });

  it('does not give another host the token of app.example.test', async () => {
    const response = await httpRequest(edge.httpPort, {
      host: 'staging.example.test',
      path: '/.well-known/acme-challenge/tok123',
    });
    assert.equal(response.status, 404);
  });

  it('answers a missing Host with 400 and an unknown one with 421', async () => {
    const v10 = await rawExchange(edge.httpPort, 'GET / HTTP/1.0\r\n\r\n');
    const v11 = await rawExchange(edge.httpPort, 'GET /api/ping HTTP/1.1\r\n\r\n');
    const duplicate = await rawExchange(
      edge.httpPort,
      'GET / HTTP/1.1\r\nHost: app.example.test\r\nHost: staging.example.test\r\n\r\n',
    );
    const unknown = await httpRequest(edge.httpPort, { host: '203.0.113.9' });
    assert.equal(statusOf(v10), 400);
    assert.equal(statusOf(v11), 400);
    assert.equal(statusOf(duplicate), 400);
    assert.equal(unknown.status, 421);
  });

  it('redirects an absolute-form target to its authority', async () => {
    const raw = await rawExchange(
      edge.httpPort,
      'GET http://staging.example.test/x HTTP/1.1\r\nHost: evil.attacker.test\r\nConnection: close\r\n\r\n',
    );
    assert.equal(statusOf(raw), 308);
    assert.match(raw, /\r\nLocation: https:\/\/staging\.example\.test:8443\/x\r\n/i);
  });

  it('answers an absolute-form target with two Host lines with 400', async () => {
    const raw = await rawExchange(
      edge.httpPort,
      'GET http://staging.example.test/ HTTP/1.1\r\nHost: app.example.test\r\nHost: app.example.test\r\n\r\n',
    );
    assert.equal(statusOf(raw), 400);
  });

  it('redirects a WebSocket handshake on plain HTTP and closes the socket', async () => {
    const raw = await rawExchange(
      edge.httpPort,
      'GET /ws/ HTTP/1.1\r\nHost: app.example.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    );
    assert.equal(statusOf(raw), 308);
    assert.match(raw, /Location: https:\/\/app\.example\.test:8443\/ws\//);
  });
});
