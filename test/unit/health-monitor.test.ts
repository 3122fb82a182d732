import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { afterEach, describe, it } from 'node:test';
import pino from 'pino';
import { parseConfig } from '../../src/config/load.ts';
import { UpstreamHealthMonitor } from '../../src/health/monitor.ts';
import type { ProbeOptions, ProbeResult } from '../../src/health/probe.ts';
import { serviceKey, Target, TargetRegistry, upstreamKey } from '../../src/targets/registry.ts';

const config = parseConfig({
  sites: [
    {
      name: 'prod',
      hosts: ['app.example.test', 'www.example.test'],
      healthCheck: { path: '/healthz' },
      routes: [
        { path: '/api/', service: 'web' },
        { path: '/ws/', service: 'web' },
        { path: '/', static: '/srv/www' },
      ],
    },
    {
      name: 'staging',
      hosts: ['staging.example.test'],
      routes: [{ path: '/', upstream: 'http://127.0.0.1:9', websocket: false }],
    },
  ],
  services: {
    web: { container: 'web-prod', image: 'registry.test/web', port: 8000, environment: 'prod' },
  },
  deploy: { environments: { prod: { secretEnv: 'EDGE_TEST_UNUSED' } } },
});

/** Collects pino lines as parsed objects. */
function captureLogs(): { logger: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line !== '') lines.push(JSON.parse(line));
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

async function waitFor(condition: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

let monitor: UpstreamHealthMonitor | undefined;
afterEach(async () => {
  await monitor?.stop();
  monitor = undefined;
});

describe('health monitor', () => {
  it('logs each state change once, not every probe', async () => {
    const script = [true, true, true, false, false, false, false, true, true, true];
    const calls: ProbeOptions[] = [];
    const { logger, lines } = captureLogs();
    const registry = new TargetRegistry();
    registry.switch(serviceKey('web'), new Target('http://10.0.0.5:8000', 'c1'));

    monitor = new UpstreamHealthMonitor({
      config,
      targets: registry,
      logger,
      intervalMs: 1,
      probe: async (options) => {
        if (options.origin !== 'http://10.0.0.5:8000') return { healthy: true, latencyMs: 1 };
        calls.push(options);
        const healthy = script[Math.min(calls.length - 1, script.length - 1)]!;
        return healthy
          ? { healthy, latencyMs: 3, status: 200 }
          : { healthy, latencyMs: 4, error: 'HTTP 503', status: 503 };
      },
    });
    monitor.start();
    await waitFor(() => calls.length >= script.length + 3, 'probes');

    const webChanges = lines.filter(
      (line) =>
        line.site === 'prod' && typeof line.msg === 'string' && line.msg.startsWith('upstream '),
    );
    assert.deepEqual(
      webChanges.map((line) => line.msg),
      ['upstream healthy', 'upstream unhealthy', 'upstream healthy'],
    );
    assert.equal(webChanges[1]!.error, 'HTTP 503');
    assert.equal(webChanges[1]!.target, 'http://10.0.0.5:8000');
  });

  it('probes with the site health path and first host', async () => {
    const calls: ProbeOptions[] = [];
    const registry = new TargetRegistry();
    registry.switch(serviceKey('web'), new Target('http://10.0.0.5:8000', 'c1'));
    monitor = new UpstreamHealthMonitor({
      config,
      targets: registry,
      logger: pino({ level: 'silent' }),
      intervalMs: 1000,
      timeoutMs: 250,
      probe: async (options) => {
        calls.push(options);
        return { healthy: true, latencyMs: 1, status: 200 };
      },
    });
    monitor.start();
    await waitFor(() => calls.length >= 2, 'both upstreams probed');

    const web = calls.find((call) => call.origin === 'http://10.0.0.5:8000');
    assert.ok(web, 'service target probed');
    assert.equal(web.path, '/healthz');
    assert.equal(web.host, 'app.example.test');
    assert.equal(web.timeoutMs, 250);
    assert.equal(web.upgradeRequiredIsHealthy, true, 'WebSocket routes accept 426');
    const staging = calls.find((call) => call.origin === 'http://127.0.0.1:9');
    assert.ok(staging, 'fixed upstream probed');
    assert.equal(staging.path, '/');
    assert.equal(staging.host, 'staging.example.test');
    assert.equal(staging.upgradeRequiredIsHealthy, false, 'plain routes count 426 as a failure');
  });

  it('reports one status per proxied route and none for static routes', async () => {
    const registry = new TargetRegistry();
    registry.switch(serviceKey('web'), new Target('http://10.0.0.5:8000', 'c1'));
    monitor = new UpstreamHealthMonitor({
      config,
      targets: registry,
      logger: pino({ level: 'silent' }),
      intervalMs: 1000,
      now: () => Date.parse('2030-01-02T03:04:05.000Z'),
      probe: async (options) =>
        options.origin.includes('10.0.0.5')
          ? { healthy: true, latencyMs: 7, status: 200 }
          : { healthy: false, latencyMs: 2, error: 'connect ECONNREFUSED 127.0.0.1:9' },
    });
    monitor.start();
    await waitFor(() => monitor!.status().every((s) => s.healthy !== undefined), 'first results');

    const status = monitor.status();
    assert.deepEqual(
      status.map((s) => [s.site, s.route]),
      [
        ['prod', '/api/'],
        ['prod', '/ws/'],
        ['staging', '/'],
      ],
    );
    const api = status[0]!;
    assert.equal(api.healthy, true);
    assert.equal(api.latencyMs, 7);
    assert.equal(api.target, 'http://10.0.0.5:8000');
    assert.equal(api.since, '2030-01-02T03:04:05.000Z');
    assert.equal(api.lastError, undefined);
    const staging = status[2]!;
    assert.equal(staging.healthy, false);
    assert.equal(staging.lastError, 'connect ECONNREFUSED 127.0.0.1:9');
    assert.equal(staging.latencyMs, undefined, 'no latency without an answer');
  });

  it('follows a target switch and probes the new target at once', async () => {
    const registry = new TargetRegistry();
    const origins: string[] = [];
    monitor = new UpstreamHealthMonitor({
      config,
      targets: registry,
      logger: pino({ level: 'silent' }),
      intervalMs: 60_000,
      probe: async (options) => {
        origins.push(options.origin);
        return { healthy: true, latencyMs: 1, status: 200 };
      },
    });
    monitor.start();
    await waitFor(() => monitor!.status()[0]!.healthy !== undefined, 'first result');

    const before = monitor.status()[0]!;
    assert.equal(before.healthy, false, 'a service without a container is unhealthy');
    assert.equal(before.lastError, 'service web has no running container');

    registry.switch(serviceKey('web'), new Target('http://10.0.0.9:8000', 'c2'));
    await waitFor(() => origins.includes('http://10.0.0.9:8000'), 'probe of the new target');
    await waitFor(() => monitor!.status()[0]!.healthy === true, 'new target healthy');
    assert.equal(monitor.status()[0]!.target, 'http://10.0.0.9:8000');
  });

  it('reads fixed upstreams from the slot the proxy uses', async () => {
    const fixed = parseConfig({
      sites: [
        {
          name: 'prod',
          hosts: ['a.test'],
          routes: [{ path: '/', upstream: 'http://backend.test:80/' }],
        },
      ],
    });
    const registry = new TargetRegistry();
    registry.switch(upstreamKey('http://backend.test'), new Target('http://127.0.0.1:8080'));
    const origins: string[] = [];
    monitor = new UpstreamHealthMonitor({
      config: fixed,
      targets: registry,
      logger: pino({ level: 'silent' }),
      intervalMs: 60_000,
      probe: async (options) => {
        origins.push(options.origin);
        return { healthy: true, latencyMs: 1, status: 200 };
      },
    });
    monitor.start();
    await waitFor(() => origins.length > 0, 'first probe');

    assert.deepEqual(origins, ['http://127.0.0.1:8080']);
  });

  it('stops probing after stop()', async () => {
    let calls = 0;
    const registry = new TargetRegistry();
    const stopped = new UpstreamHealthMonitor({
      config,
      targets: registry,
      logger: pino({ level: 'silent' }),
      intervalMs: 1,
      probe: async (): Promise<ProbeResult> => {
        calls++;
        return { healthy: true, latencyMs: 1, status: 200 };
      },
    });
    stopped.start();
    await waitFor(() => calls >= 3, 'a few probes');
    await stopped.stop();

    const after = calls;
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.equal(calls, after);
    assert.equal(registry.listenerCount('switch'), 0);
  });
});
