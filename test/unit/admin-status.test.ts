import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { registerAdminRoutes, type StatusReport } from '../../src/admin/index.ts';
import { IdleCollector } from '../../src/idle-collector.ts';
import {
  AdminClient,
  bareContext,
  captureLogs,
  fullContext,
  startApiServer,
  succeededDeploy,
  testEnv,
  TEST_DEPLOY_SECRET,
  TEST_REGISTRY_PASSWORD,
  testPasswordHash,
} from './admin-fixtures.ts';

type Shape = string | ShapeObject | [Shape];
interface ShapeObject {
  [key: string]: Shape;
}

/** Asserts that `value` has exactly the fields of `shape`, each of the given type. */
function assertShape(value: unknown, shape: Shape, path = 'status'): void {
  if (typeof shape === 'string') {
    const allowed = shape.split('|');
    const actual = value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
    assert.ok(allowed.includes(actual), `${path}: expected ${shape}, got ${actual}`);
    return;
  }
  if (Array.isArray(shape)) {
    assert.ok(Array.isArray(value), `${path}: expected an array`);
    value.forEach((item, index) => assertShape(item, shape[0], `${path}[${index}]`));
    return;
  }
  assert.ok(
    value !== null && typeof value === 'object' && !Array.isArray(value),
    `${path}: expected an object`,
  );
  assert.deepEqual(Object.keys(value).sort(), Object.keys(shape).sort(), `${path}: field names`);
  for (const [key, fieldShape] of Object.entries(shape)) {
    assertShape((value as Record<string, unknown>)[key], fieldShape, `${path}.${key}`);
  }
}

const DEPLOY_SHAPE: ShapeObject = {
  id: 'string',
  service: 'string',
  image: 'string',
  digest: 'string|null',
  previousDigest: 'string|null',
  commit: 'string|null',
  ref: 'string|null',
  rollback: 'boolean',
  state: 'string',
  failedStep: 'string|null',
  error: 'string|null',
  startedAt: 'string',
  finishedAt: 'string|null',
  durationMs: 'number|null',
  steps: [{ name: 'string', status: 'string', durationMs: 'number|null', message: 'string|null' }],
};

const STATUS_SHAPE: ShapeObject = {
  schemaVersion: 'number',
  generatedAt: 'string',
  edge: {
    version: 'string',
    startedAt: 'string',
    uptimeS: 'number',
    memory: {
      rssBytes: 'number',
      heapUsedBytes: 'number',
      heapTotalBytes: 'number',
      idleCollections: 'number',
      lastIdleCollectionAt: 'string|null',
      lastIdleCollectionFreedBytes: 'number|null',
      mallocTrim: 'boolean',
    },
    tls: { sessionTickets: 'number' },
    eventLoopDelayMs: { mean: 'number', p50: 'number', p99: 'number', max: 'number' },
    requestsTotal: 'number',
    requestsPerSecond: 'number',
    rate4xx: 'number',
    rate5xx: 'number',
  },
  sites: [
    {
      name: 'string',
      hosts: ['string'],
      routes: [
        {
          path: 'string',
          kind: 'string',
          target: 'string',
          requests: 'number',
          responses: {
            '1xx': 'number',
            '2xx': 'number',
            '3xx': 'number',
            '4xx': 'number',
            '5xx': 'number',
          },
          healthy: 'boolean|null',
        },
      ],
    },
  ],
  upstreams: {
    configured: 'boolean',
    items: [
      {
        site: 'string',
        route: 'string',
        target: 'string|null',
        healthy: 'boolean|null',
        latencyMs: 'number|null',
        lastError: 'string|null',
        lastErrorAt: 'string|null',
        since: 'string|null',
        checkedAt: 'string|null',
      },
    ],
  },
  containers: {
    configured: 'boolean',
    error: 'string|null',
    items: [
      {
        service: 'string',
        container: 'string',
        id: 'string|null',
        image: 'string|null',
        digest: 'string|null',
        state: 'string',
        startedAt: 'string|null',
        restartCount: 'number|null',
        address: 'string|null',
      },
    ],
  },
  certificates: [
    {
      names: ['string'],
      state: 'string',
      directory: 'string',
      issuer: 'string|null',
      serial: 'string|null',
      notBefore: 'string|null',
      notAfter: 'string|null',
      daysLeft: 'number|null',
      alert: 'boolean',
      lastAttemptAt: 'string|null',
      nextAttemptAt: 'string|null',
      lastError: 'object|null',
      rateLimitedUntil: 'string|null',
    },
  ],
  deploys: {
    configured: 'boolean',
    running: [DEPLOY_SHAPE],
    recent: [DEPLOY_SHAPE],
    services: [
      { service: 'string', container: 'string', image: 'string', previousDigest: 'string|null' },
    ],
  },
};

async function fetchStatus(context: ReturnType<typeof bareContext>) {
  registerAdminRoutes(context, { env: await testEnv() });
  const server = await startApiServer(context);
  try {
    const client = new AdminClient(server.origin);
    await client.login();
    const json = await client.get('/_edge/status');
    const page = await client.get('/_edge/');
    const metrics = await client.get('/_edge/metrics');
    return { json, page, metrics, status: JSON.parse(json.text) as StatusReport };
  } finally {
    await server.close();
  }
}

describe('admin status JSON', () => {
  it('matches the documented schema', async () => {
    const context = fullContext();
    context.deploys.records.push(
      succeededDeploy({
        id: 'd-3',
        state: 'running',
        finishedAt: undefined,
        durationMs: undefined,
      }),
    );
    const { json, status } = await fetchStatus(context);

    assert.equal(json.status, 200);
    assert.match(String(json.headers['content-type']), /^application\/json/);
    assert.equal(json.headers['cache-control'], 'no-store');
    assertShape(status, STATUS_SHAPE);
    assert.equal(status.schemaVersion, 1);
    assert.equal(status.deploys.running.length, 1);
    assert.equal(status.deploys.recent.length, 2);
  });

  it('reports routes, health and request counts', async () => {
    const { status } = await fetchStatus(fullContext());

    const prod = status.sites[0]!;
    assert.equal(prod.name, 'prod');
    assert.deepEqual(prod.hosts, ['app.example.test']);
    const api = prod.routes[0]!;
    assert.equal(api.path, '/api/');
    assert.equal(api.kind, 'service');
    assert.equal(api.target, 'web');
    assert.equal(api.requests, 5);
    assert.deepEqual(api.responses, { '1xx': 0, '2xx': 3, '3xx': 0, '4xx': 1, '5xx': 1 });
    assert.equal(api.healthy, true);
    assert.equal(prod.routes[1]!.kind, 'static');
    assert.equal(prod.routes[1]!.healthy, null);
    assert.equal(status.sites[1]!.routes[0]!.healthy, false);
    assert.equal(status.edge.requestsTotal, 5);
    assert.equal(status.edge.uptimeS >= 3600, true);
  });

  it('computes days left and the alert below seven days', async () => {
    const { status } = await fetchStatus(fullContext());

    const valid = status.certificates[0]!;
    const expiring = status.certificates[1]!;
    assert.equal(valid.alert, false);
    assert.ok(valid.daysLeft! > 44, `daysLeft ${valid.daysLeft}`);
    assert.ok(valid.daysLeft! <= 45, `daysLeft ${valid.daysLeft}`);
    assert.equal(valid.issuer, 'Pebble Intermediate CA');
    assert.equal(expiring.alert, true);
    assert.ok(expiring.daysLeft! > 2, `daysLeft ${expiring.daysLeft}`);
    assert.ok(expiring.daysLeft! <= 3, `daysLeft ${expiring.daysLeft}`);
    assert.equal(expiring.lastError?.message, 'challenge invalid');
    assert.equal(expiring.lastError?.type, 'urn:ietf:params:acme:error:unauthorized');
  });

  it('lists recent deploys newest first with the rollback digest', async () => {
    const { status } = await fetchStatus(fullContext());

    assert.deepEqual(
      status.deploys.recent.map((d) => d.id),
      ['d-2', 'd-1'],
    );
    assert.equal(status.deploys.recent[0]!.failedStep, 'health');
    assert.deepEqual(status.deploys.services, [
      {
        service: 'web',
        container: 'web-prod',
        image: 'registry.example.test/web',
        previousDigest: 'sha256:4141414141414141414141414141414141414141414141414141414141414141',
      },
    ]);
  });

  it('shows empty states when modules are missing', async () => {
    const { status, page } = await fetchStatus(bareContext());

    assertShape(status, STATUS_SHAPE);
    assert.equal(status.upstreams.configured, false);
    assert.equal(status.containers.configured, false);
    assert.equal(status.deploys.configured, false);
    assert.deepEqual(status.certificates, []);
    assert.equal(status.deploys.services[0]!.previousDigest, null);
    assert.equal(page.status, 200);
    assert.match(page.text, /Docker not configured/);
    assert.match(page.text, /Deploys not configured/);
    assert.match(page.text, /Health checks not configured/);
  });

  it('reports the memory given back after the latest load', async () => {
    const context = fullContext();
    let rss = 90 * 1024 * 1024;
    let cpuMicros = 0;
    let now = Date.now();
    context.idleCollector = new IdleCollector({
      logger: context.logger,
      collect: () => (rss -= 12 * 1024 * 1024),
      cpuMicros: () => cpuMicros,
      now: () => now,
      memory: () => ({ heapTotal: rss / 4, rss }),
      trim: () => true,
    });
    const before = await fetchStatus(context);
    assert.equal(before.status.edge.memory.idleCollections, 0);
    assert.equal(before.status.edge.memory.lastIdleCollectionAt, null);
    assert.equal(before.status.edge.memory.lastIdleCollectionFreedBytes, null);
    assert.doesNotMatch(before.page.text, /given back/);

    context.idleCollector.start();
    context.idleCollector.stop();
    cpuMicros += 1_000_000;
    now += 5_000;
    context.idleCollector.check();
    now += 5_000;
    context.idleCollector.check();
    const { status, page } = await fetchStatus(context);

    assert.equal(status.edge.memory.idleCollections, 1);
    assert.equal(status.edge.memory.lastIdleCollectionAt, new Date(now).toISOString());
    assert.equal(status.edge.memory.lastIdleCollectionFreedBytes, 3 * 1024 * 1024);
    assert.equal(status.edge.memory.mallocTrim, true);
    assert.match(page.text, /3(\.0)? MiB of heap\s+given back/);
  });

  it('reports a failing Docker daemon instead of failing', async () => {
    const context = fullContext();
    context.docker.containers = async () => {
      throw new Error('connect ENOENT /var/run/docker.sock');
    };
    const logs = captureLogs();
    context.logger = logs.logger;
    const { status, page, metrics } = await fetchStatus(context);

    assert.equal(status.containers.configured, true);
    assert.equal(status.containers.error, 'connect ENOENT /var/run/docker.sock');
    assert.match(page.text, /Listing containers failed/);
    assert.equal(metrics.status, 200);
    const failures = logs.lines.filter((line) => line.msg === 'listing containers failed');
    assert.equal(failures.length, 3, 'status, page and metrics each listed');
    assert.deepEqual(
      failures.map((line) => line.level),
      [40, 20, 20],
      'warned once, repeats at debug',
    );
  });
});

describe('admin secrets', () => {
  it('never shows deploy or registry secrets', async () => {
    const context = fullContext();
    context.deploys.records.push(
      succeededDeploy({
        id: 'd-leak',
        state: 'failed',
        failedStep: 'pull',
        error: `pull failed: unauthorized for ci:${TEST_REGISTRY_PASSWORD} with token ${TEST_DEPLOY_SECRET}`,
        steps: [{ name: 'pull', status: 'failed', message: `token=${TEST_DEPLOY_SECRET}` }],
      }),
    );
    context.docker.items[0]!.state = `exited: ${TEST_DEPLOY_SECRET}`;
    const { json, page, metrics } = await fetchStatus(context);
    const hash = await testPasswordHash();

    for (const [name, text] of [
      ['json', json.text],
      ['page', page.text],
      ['metrics', metrics.text],
    ] as const) {
      assert.ok(!text.includes(TEST_DEPLOY_SECRET), `${name} shows the deploy secret`);
      assert.ok(!text.includes(TEST_REGISTRY_PASSWORD), `${name} shows the registry password`);
      assert.ok(!text.includes(hash.split('$')[5]!), `${name} shows the password hash`);
    }
    assert.match(json.text, /unauthorized for ci:\[redacted\]/, 'the rest of the message stays');
  });
});
