import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, it } from 'node:test';
import { waitUntilHealthy } from '../../src/deploy/health-wait.ts';
import { FakeEngine } from '../support/fake-docker.ts';

describe('waiting for a new container to be healthy', () => {
  let server: http.Server | undefined;

  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
    server = undefined;
  });

  async function listen(handler: http.RequestListener): Promise<number> {
    server = http.createServer(handler);
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    return (server.address() as AddressInfo).port;
  }

  it('reports the last answer when the final probe runs out of time', async () => {
    let probes = 0;
    // The first probe gets a redirect; every later one hangs until the deadline cuts it short.
    const port = await listen((_req, res) => {
      probes += 1;
      if (probes === 1) {
        res.writeHead(301, { location: 'https://app.example.test/health' });
        res.end();
      }
    });
    const engine = new FakeEngine();
    const containerId = engine.addContainer({ name: 'svc-web', image: 'app:v2' });

    await assert.rejects(
      waitUntilHealthy({
        engine,
        containerId,
        port,
        path: '/health',
        intervalMs: 10,
        timeoutMs: 400,
      }),
      (error: Error) => {
        assert.match(error.message, /not healthy within 400 ms: health check returned HTTP 301/);
        assert.doesNotMatch(error.message, /no response within/);
        return true;
      },
    );
    assert.ok(probes >= 2, `expected a second probe, saw ${probes}`);
  });

  it('reports a timeout when no probe ever answered', async () => {
    const port = await listen(() => {
      // Never answers.
    });
    const engine = new FakeEngine();
    const containerId = engine.addContainer({ name: 'svc-web', image: 'app:v2' });

    await assert.rejects(
      waitUntilHealthy({
        engine,
        containerId,
        port,
        path: '/health',
        intervalMs: 10,
        timeoutMs: 200,
      }),
      /not healthy within 200 ms: health check failed: no response within \d+ ms/,
    );
  });

  it('returns the address once the probe answers 200', async () => {
    const port = await listen((_req, res) => {
      res.writeHead(200);
      res.end('ok');
    });
    const engine = new FakeEngine();
    const containerId = engine.addContainer({ name: 'svc-web', image: 'app:v2' });

    const result = await waitUntilHealthy({
      engine,
      containerId,
      port,
      path: '/health',
      intervalMs: 10,
      timeoutMs: 2_000,
    });

    assert.equal(result.address, '127.0.0.1');
    assert.equal(result.message, 'health check returned HTTP 200');
  });
});
