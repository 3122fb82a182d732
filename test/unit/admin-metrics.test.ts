import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { registerAdminRoutes } from '../../src/admin/index.ts';
import { DURATION_BUCKETS_S, RouteStats } from '../../src/stats.ts';
import {
  AdminClient,
  findSample as find,
  fullContext,
  parseExposition,
  startApiServer,
  succeededDeploy,
  testEnv,
} from './admin-fixtures.ts';

async function scrape(context = fullContext()) {
  registerAdminRoutes(context, { env: await testEnv() });
  const server = await startApiServer(context);
  try {
    const client = new AdminClient(server.origin);
    await client.login();
    const first = await client.get('/_edge/metrics');
    const second = await client.get('/_edge/metrics');
    return {
      context,
      first,
      second,
      parsed: parseExposition(first.text),
      again: parseExposition(second.text),
    };
  } finally {
    await server.close();
  }
}

describe('admin metrics', () => {
  it('parses as Prometheus text with the right content type', async () => {
    const { first, parsed } = await scrape();
    assert.equal(first.status, 200);
    assert.match(String(first.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    assert.equal(parsed.types.get('edge_http_requests_total'), 'counter');
    assert.equal(parsed.types.get('edge_http_request_duration_seconds'), 'histogram');
    assert.equal(parsed.types.get('edge_upstream_healthy'), 'gauge');
    assert.equal(parsed.types.get('edge_certificate_expiry_seconds'), 'gauge');
    assert.equal(parsed.types.get('edge_deploys_total'), 'counter');
    assert.equal(parsed.types.get('edge_deploy_duration_seconds'), 'histogram');
    assert.equal(parsed.types.get('process_resident_memory_bytes'), 'gauge', 'process metrics');
  });

  it('counts requests by site, route and status class', async () => {
    const { parsed } = await scrape();
    const labels = { site: 'prod', route: '/api/' };
    assert.equal(find(parsed, 'edge_http_requests_total', { ...labels, status_class: '2xx' }), 3);
    assert.equal(find(parsed, 'edge_http_requests_total', { ...labels, status_class: '4xx' }), 1);
    assert.equal(find(parsed, 'edge_http_requests_total', { ...labels, status_class: '5xx' }), 1);
    assert.equal(find(parsed, 'edge_http_response_bytes_total', labels), 500);
  });

  it('builds a cumulative duration histogram from the route counters', async () => {
    const context = fullContext();
    const stats = new RouteStats('staging', '/slow/');
    stats.record(200, 3, 0);
    stats.record(200, 30, 0);
    stats.record(200, 30_000, 0);
    context.routeStats.push(stats);
    const { parsed } = await scrape(context);

    const labels = { site: 'staging', route: '/slow/' };
    const buckets = parsed.samples.filter(
      (s) => s.name === 'edge_http_request_duration_seconds_bucket' && s.labels.route === '/slow/',
    );
    assert.equal(buckets.length, DURATION_BUCKETS_S.length + 1);
    assert.equal(
      find(parsed, 'edge_http_request_duration_seconds_bucket', { ...labels, le: '0.005' }),
      1,
    );
    assert.equal(
      find(parsed, 'edge_http_request_duration_seconds_bucket', { ...labels, le: '0.05' }),
      2,
    );
    assert.equal(
      find(parsed, 'edge_http_request_duration_seconds_bucket', { ...labels, le: '10' }),
      2,
    );
    assert.equal(
      find(parsed, 'edge_http_request_duration_seconds_bucket', { ...labels, le: '+Inf' }),
      3,
    );
    assert.equal(find(parsed, 'edge_http_request_duration_seconds_count', labels), 3);
    assert.equal(find(parsed, 'edge_http_request_duration_seconds_sum', labels), 30.033);
    for (let index = 1; index < buckets.length; index++) {
      assert.ok(buckets[index]!.value >= buckets[index - 1]!.value, 'buckets are cumulative');
    }
  });

  it('exports upstream health and certificate expiry', async () => {
    const { parsed } = await scrape();
    assert.equal(find(parsed, 'edge_upstream_healthy', { site: 'prod', route: '/api/' }), 1);
    assert.equal(find(parsed, 'edge_upstream_healthy', { site: 'staging', route: '/' }), 0);
    assert.equal(
      find(parsed, 'edge_upstream_probe_latency_seconds', { site: 'prod', route: '/api/' }),
      0.0032,
    );

    const expiry = find(parsed, 'edge_certificate_expiry_seconds', { name: 'app.example.test' });
    assert.ok(expiry !== undefined, 'expiry exported');
    assert.ok(Math.abs(expiry - 45 * 86400) < 60, `expiry ${expiry}`);
    assert.equal(
      find(parsed, 'edge_certificate_renewal_error', { name: 'staging.example.test' }),
      1,
    );
    assert.equal(find(parsed, 'edge_certificate_renewal_error', { name: 'app.example.test' }), 0);
    assert.equal(
      find(parsed, 'edge_container_running', { service: 'web', container: 'web-prod' }),
      1,
    );
  });

  it('counts each finished deploy once across scrapes', async () => {
    const context = fullContext();
    context.deploys.records.push(
      succeededDeploy({
        id: 'd-run',
        state: 'running',
        finishedAt: undefined,
        durationMs: undefined,
      }),
    );
    const { parsed, again } = await scrape(context);

    for (const exposition of [parsed, again]) {
      assert.equal(
        find(exposition, 'edge_deploys_total', {
          service: 'web',
          kind: 'deploy',
          result: 'succeeded',
        }),
        1,
      );
      assert.equal(
        find(exposition, 'edge_deploys_total', {
          service: 'web',
          kind: 'deploy',
          result: 'failed',
        }),
        1,
      );
      assert.equal(find(exposition, 'edge_deploys_running', { service: 'web' }), 1);
      const count = find(exposition, 'edge_deploy_duration_seconds_count', {
        service: 'web',
        result: 'succeeded',
      });
      assert.equal(count, 1);
      assert.equal(
        find(exposition, 'edge_deploy_duration_seconds_sum', {
          service: 'web',
          result: 'succeeded',
        }),
        12,
      );
    }
  });
});
