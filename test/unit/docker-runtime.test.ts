import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/load.ts';
import type { EdgeContext } from '../../src/context.ts';
import { createDockerRuntime } from '../../src/docker/index.ts';
import { EdgeApi } from '../../src/edge-api.ts';
import { silentLogger } from '../../src/log.ts';
import { serviceKey, TargetRegistry } from '../../src/targets/registry.ts';

function context(
  services: Record<string, unknown>,
  socket = '/nonexistent/docker.sock',
): EdgeContext {
  const config = parseConfig({
    sites: [
      {
        name: 'prod',
        hosts: ['app.example.test'],
        routes: [{ path: '/', upstream: 'http://web:80' }],
      },
    ],
    services,
    deploy: { environments: { prod: { secretEnv: 'UNUSED_SECRET' } } },
    docker: { socket },
  });
  return {
    config,
    logger: silentLogger,
    targets: new TargetRegistry(),
    api: new EdgeApi(),
  } as unknown as EdgeContext;
}

describe('docker runtime', () => {
  it('is absent without services', async () => {
    assert.equal(await createDockerRuntime(context({})), undefined);
  });

  it('starts while Docker is unreachable and reports it', async () => {
    const edge = context({
      api: { container: 'svc-api', image: 'reg/api', port: 8000, environment: 'prod' },
    });

    const runtime = await createDockerRuntime(edge, { eventsRetryMs: 10 });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const [status] = await runtime!.containers();
    await runtime!.stop();

    assert.equal(status?.service, 'api');
    assert.match(status?.state ?? '', /^unknown: .*ENOENT/);
    assert.equal(edge.targets.slot(serviceKey('api')).current, undefined);
  });
});
