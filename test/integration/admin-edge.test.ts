import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { StatusReport } from '../../src/admin/index.ts';
import { parseConfig } from '../../src/config/load.ts';
import { startEdge, type RunningEdge } from '../../src/edge.ts';
import {
  httpRequest,
  httpsRequest,
  rawExchange,
  statusOf,
  type TestResponse,
} from '../support/upstreams.ts';
import {
  adminEdgeConfig,
  captureLogs,
  findSample,
  parseExposition,
  prepareAdminEdgeDir,
  TEST_DEPLOY_SECRET,
  TEST_PASSWORD,
} from '../unit/admin-fixtures.ts';

const PROBE_INTERVAL_MS = 40;

/** Strings of the status that must never reach an unauthenticated client. */
const STATUS_MARKERS = [
  'staging.example.test',
  '127.0.0.1:',
  'ECONNREFUSED',
  'schemaVersion',
  'edge_http',
];

function assertNoStatusData(text: string, where: string): void {
  for (const marker of STATUS_MARKERS)
    assert.ok(!text.includes(marker), `${where} contains ${marker}`);
}

async function waitFor(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 5000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Starts an upstream that returns 200 on every path, on `port` (0 for any). */
async function startHealthyUpstream(port = 0): Promise<http.Server> {
  const server = http.createServer((_req, res) => res.end('ok'));
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return server;
}

async function closeServer(server: http.Server): Promise<void> {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
}

/** Returns a loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = await startHealthyUpstream();
  const port = (server.address() as AddressInfo).port;
  await closeServer(server);
  return port;
}

describe('admin through the edge', () => {
  let edge: RunningEdge;
  let upstream: http.Server;
  let upstreamPort: number;
  let httpsPort: number;
  let httpPort: number;
  let workDir: string;
  const logs = captureLogs();
  let cookie = '';

  const request = (
    requestPath: string,
    options: { method?: string; body?: string; headers?: Record<string, string> } = {},
  ) =>
    httpsRequest(httpsPort, {
      path: requestPath,
      method: options.method,
      body: options.body,
      headers: options.headers,
    });

  const authed = (requestPath: string): Promise<TestResponse> =>
    request(requestPath, { headers: { cookie } });

  before(async () => {
    workDir = await prepareAdminEdgeDir('admin-edge-');

    upstream = await startHealthyUpstream();
    upstreamPort = (upstream.address() as AddressInfo).port;
    const config = parseConfig(
      adminEdgeConfig({
        workDir,
        upstreamPort,
        stagingPort: await closedPort(),
        probeIntervalMs: PROBE_INTERVAL_MS,
      }),
    );
    edge = await startEdge(config, logs.logger);
    httpsPort = (edge.servers.https.address() as AddressInfo).port;
    httpPort = (edge.servers.http.address() as AddressInfo).port;
  });

  after(async () => {
    await edge?.stop();
    await closeServer(upstream);
    rmSync(workDir, { recursive: true, force: true });
  });

  it('requires login on every spelling of the admin path', async () => {
    const statusPaths = [
      '/_edge/status',
      '//_edge/status',
      '/%5Fedge/status',
      '/%5fEDGE/status',
      '/_EDGE/status',
      '/_edge//status',
      '/x/../_edge/status',
      '/_edge/%73tatus',
    ];
    for (const variant of [
      ...statusPaths,
      ...statusPaths.map((p) => p.replace('status', 'metrics')),
    ]) {
      const raw = await rawExchange(
        httpsPort,
        `GET ${variant} HTTP/1.1\r\nHost: app.example.test\r\nX-Forwarded-For: 127.0.0.1\r\nConnection: close\r\n\r\n`,
        { tls: { servername: 'app.example.test' } },
      );
      assert.equal(statusOf(raw), 401, `${variant}: ${raw.slice(0, 80)}`);
      assertNoStatusData(raw, variant);
    }

    for (const variant of ['/_edge/', '/_edge', '//_edge/', '/_EDGE/', '/%5Fedge/']) {
      const response = await request(variant);
      assert.equal(response.status, 303, variant);
      assert.equal(response.headers.location, '/_edge/login', variant);
      assertNoStatusData(response.body, variant);
    }
  });

  it('never serves the admin on port 80', async () => {
    for (const variant of ['/_edge/status', '/_edge/', '/_edge/login', '/_edge/health']) {
      const response = await httpRequest(httpPort, { path: variant });
      assert.equal(Math.floor(response.status / 100), 3, `${variant}: ${response.status}`);
      assert.match(String(response.headers.location), /^https:\/\//);
      assertNoStatusData(response.body, variant);
    }
  });

  it('serves liveness without login', async () => {
    const response = await request('/_edge/health');
    assert.equal(response.status, 200);
    assert.equal(response.body, 'ok\n');
  });

  it('rejects a wrong password', async () => {
    const response = await request('/_edge/login', {
      method: 'POST',
      body: new URLSearchParams({ password: 'not-the-password' }).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(response.status, 401);
    assert.equal(response.headers['set-cookie'], undefined);
  });

  it('logs in and reports real health, certificates and requests', async () => {
    const login = await request('/_edge/login', {
      method: 'POST',
      body: new URLSearchParams({ password: TEST_PASSWORD }).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(login.status, 303);
    cookie = String(login.headers['set-cookie']).split(';')[0]!;
    assert.match(cookie, /^__Secure-edge_session=/);

    assert.equal((await request('/api/items')).status, 200, 'proxied request');
    let status: StatusReport | undefined;
    await waitFor(async () => {
      status = JSON.parse((await authed('/_edge/status')).body) as StatusReport;
      return status.upstreams.items.every((item) => item.healthy !== null);
    }, 'first probes');

    const items = status!.upstreams.items;
    const api = items.find((item) => item.site === 'prod' && item.route === '/api/');
    const staging = items.find((item) => item.site === 'staging');
    assert.equal(api?.healthy, true);
    assert.equal(api?.target, `http://127.0.0.1:${upstreamPort}`);
    assert.equal(typeof api?.latencyMs, 'number');
    assert.equal(staging?.healthy, false);
    assert.match(staging?.lastError ?? '', /ECONNREFUSED/);

    const apiRoute = status!.sites[0]!.routes.find((route) => route.path === '/api/');
    assert.ok((apiRoute?.requests ?? 0) >= 1, 'the proxied request is counted');
    assert.equal(apiRoute?.responses['2xx'], apiRoute?.requests);
    assert.ok(status!.certificates.length >= 1);
    const certificate = status!.certificates.find((c) => c.names.includes('app.example.test'));
    assert.ok(certificate?.notAfter, 'certificate has an expiry');
    assert.equal(typeof certificate?.daysLeft, 'number');
    assert.ok(!JSON.stringify(status).includes(TEST_DEPLOY_SECRET));
  });

  it('exports parseable metrics through the edge', async () => {
    const response = await authed('/_edge/metrics');
    assert.equal(response.status, 200);

    const exposition = parseExposition(response.body);
    assert.equal(
      findSample(exposition, 'edge_upstream_healthy', { site: 'prod', route: '/api/' }),
      1,
    );
    assert.equal(
      findSample(exposition, 'edge_upstream_healthy', { site: 'staging', route: '/' }),
      0,
    );
    const requests = findSample(exposition, 'edge_http_requests_total', {
      site: 'prod',
      route: '/api/',
      status_class: '2xx',
    });
    assert.ok((requests ?? 0) >= 1);
  });

  it('logs an upstream state change once, not every probe', async () => {
    const stateLines = (message: string) =>
      logs.lines.filter((line) => line.msg === message && line.site === 'prod').length;
    assert.equal(stateLines('upstream healthy'), 1);

    await closeServer(upstream);
    await waitFor(() => stateLines('upstream unhealthy') === 1, 'unhealthy state');
    await new Promise((resolve) => setTimeout(resolve, PROBE_INTERVAL_MS * 8));
    assert.equal(stateLines('upstream unhealthy'), 1, 'logged once while probes keep failing');

    upstream = await startHealthyUpstream(upstreamPort);
    await waitFor(() => stateLines('upstream healthy') === 2, 'recovery');
    await new Promise((resolve) => setTimeout(resolve, PROBE_INTERVAL_MS * 8));
    assert.equal(stateLines('upstream healthy'), 2);
    assert.equal(stateLines('upstream unhealthy'), 1);
  });

  it('limits failed logins by socket peer, whatever X-Forwarded-For says', async () => {
    const attempt = (forwardedFor: string, password = 'wrong-password') =>
      request('/_edge/login', {
        method: 'POST',
        body: new URLSearchParams({ password }).toString(),
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          'x-forwarded-for': forwardedFor,
          'x-real-ip': forwardedFor,
        },
      });

    let limited: TestResponse | undefined;
    for (let index = 0; index < 10 && limited === undefined; index++) {
      const response = await attempt(`198.51.100.${index}`);
      if (response.status === 429) limited = response;
      else assert.equal(response.status, 401);
    }
    assert.ok(limited, 'rate limit reached');
    assert.ok(Number(limited.headers['retry-after']) > 0);
    assert.equal(
      (await attempt('203.0.113.7', TEST_PASSWORD)).status,
      429,
      'right password refused while blocked',
    );
  });
});
