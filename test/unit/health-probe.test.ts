import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { probeUpstream } from '../../src/health/probe.ts';

interface SeenRequest {
  url?: string;
  host?: string;
  proto?: string | string[];
}

describe('health probe', () => {
  const seen: SeenRequest[] = [];
  let server: http.Server;
  let origin: string;

  before(async () => {
    server = http.createServer((req, res) => {
      seen.push({ url: req.url, host: req.headers.host, proto: req.headers['x-forwarded-proto'] });
      if (req.url === '/down') res.writeHead(503).end('down');
      else if (req.url === '/redirect') res.writeHead(302, { location: '/' }).end();
      else if (req.url === '/hang') return;
      else if (req.url === '/ws-only') res.writeHead(426, { upgrade: 'websocket' }).end();
      else res.writeHead(200).end('ok');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('sends the site host and X-Forwarded-Proto https', async () => {
    const result = await probeUpstream({
      origin,
      path: '/healthz',
      host: 'app.example.test',
      timeoutMs: 1000,
    });

    assert.equal(result.healthy, true);
    assert.equal(result.status, 200);
    assert.equal(result.error, undefined);
    assert.ok(result.latencyMs >= 0);
    const request = seen.at(-1)!;
    assert.equal(request.url, '/healthz');
    assert.equal(request.host, 'app.example.test');
    assert.equal(request.proto, 'https');
  });

  it('counts a redirect as healthy', async () => {
    const result = await probeUpstream({
      origin,
      path: '/redirect',
      host: 'a.test',
      timeoutMs: 1000,
    });
    assert.equal(result.healthy, true);
    assert.equal(result.status, 302);
  });

  it('counts 426 Upgrade Required as healthy only when the upstream serves WebSockets', async () => {
    const probe = (upgradeRequiredIsHealthy: boolean) =>
      probeUpstream({
        origin,
        path: '/ws-only',
        host: 'a.test',
        timeoutMs: 1000,
        upgradeRequiredIsHealthy,
      });

    const websocket = await probe(true);
    assert.equal(websocket.healthy, true);
    assert.equal(websocket.status, 426);

    const plain = await probe(false);
    assert.equal(plain.healthy, false);
    assert.equal(plain.error, 'HTTP 426');
  });

  it('reports a 503 as unhealthy', async () => {
    const result = await probeUpstream({ origin, path: '/down', host: 'a.test', timeoutMs: 1000 });
    assert.equal(result.healthy, false);
    assert.equal(result.status, 503);
    assert.equal(result.error, 'HTTP 503');
  });

  it('times out an upstream that never answers', async () => {
    const result = await probeUpstream({ origin, path: '/hang', host: 'a.test', timeoutMs: 50 });
    assert.equal(result.healthy, false);
    assert.equal(result.status, undefined);
    assert.equal(result.error, 'timed out after 50 ms');
  });

  it('reports a refused connection', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));

    const result = await probeUpstream({
      origin: `http://127.0.0.1:${port}`,
      path: '/',
      host: 'a.test',
      timeoutMs: 1000,
    });
    assert.equal(result.healthy, false);
    assert.match(result.error ?? '', /ECONNREFUSED/);
  });

  it('aborts on the signal', async () => {
    const abort = new AbortController();
    const pending = probeUpstream({
      origin,
      path: '/hang',
      host: 'a.test',
      timeoutMs: 5000,
      signal: abort.signal,
    });
    setTimeout(() => abort.abort(), 10);

    const result = await pending;
    assert.equal(result.healthy, false);
    assert.match(result.error ?? '', /abort/i);
  });
});
