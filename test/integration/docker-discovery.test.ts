import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseConfig } from '../../src/config/load.ts';
import type { EdgeContext } from '../../src/context.ts';
import { createDockerRuntime, type DockerServiceRuntime } from '../../src/docker/index.ts';
import { EdgeApi } from '../../src/edge-api.ts';
import { silentLogger } from '../../src/log.ts';
import { serviceKey, TargetRegistry } from '../../src/targets/registry.ts';
import {
  appImages,
  cleanupDocker,
  containerIp,
  createTestNetwork,
  dockerSocket,
  runServiceContainer,
  testDocker,
  uniqueSuffix,
  type AppImages,
} from '../support/docker.ts';

describe('docker discovery on a real engine', () => {
  const prefix = `dd-${uniqueSuffix()}`;
  const name = `${prefix}-api`;
  let images: AppImages;
  let network: string;
  let otherNetwork: string;
  let context: EdgeContext;
  let runtime: DockerServiceRuntime;
  let containerId: string;

  before(async () => {
    images = await appImages();
    network = await createTestNetwork('ddw', true);
    otherNetwork = await createTestNetwork('ddo');
    // The service is on two networks; the site names the second, so its address must be used.
    containerId = await runServiceContainer({
      name,
      image: images.ref('v1'),
      networks: [{ name: otherNetwork }, { name: network }],
    });
    const config = parseConfig({
      sites: [
        {
          name: 'prod',
          hosts: ['app.example.test'],
          network,
          routes: [{ path: '/', service: 'api' }],
        },
      ],
      services: {
        api: { container: name, image: images.repository, port: 8080, environment: 'prod' },
      },
      deploy: { environments: { prod: { secretEnv: 'UNUSED_SECRET' } } },
      docker: { socket: dockerSocket() },
    });
    context = {
      config,
      logger: silentLogger,
      targets: new TargetRegistry(),
      api: new EdgeApi(),
    } as unknown as EdgeContext;
    runtime = (await createDockerRuntime(context, { eventsRetryMs: 50 }))!;
  });

  after(async () => {
    await runtime?.stop();
    await cleanupDocker([prefix], [network, otherNetwork]);
  });

  const current = () => context.targets.slot(serviceKey('api')).current;

  async function waitForTarget(id: string, origin: string): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (current()?.id !== id || current()?.origin !== origin) {
      if (Date.now() > deadline) {
        assert.fail(`target is ${current()?.id} ${current()?.origin}, expected ${id} ${origin}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  it('routes to the container address on the site network', async () => {
    await waitForTarget(containerId, `http://${await containerIp(containerId, network)}:8080`);
  });

  it('follows a container recreated under the same name', async () => {
    await testDocker().getContainer(containerId).remove({ force: true });
    containerId = await runServiceContainer({
      name,
      image: images.ref('v2'),
      networks: [{ name: otherNetwork }, { name: network }],
    });

    await waitForTarget(containerId, `http://${await containerIp(containerId, network)}:8080`);
  });

  it('follows an address change without a restart', async () => {
    const before = await containerIp(containerId, network);
    const chosen = before.replace(/\.\d+$/, before.endsWith('.77') ? '.78' : '.77');
    await testDocker().getNetwork(network).disconnect({ Container: containerId });
    await testDocker()
      .getNetwork(network)
      .connect({
        Container: containerId,
        EndpointConfig: { IPAMConfig: { IPv4Address: chosen } },
      });
    const after = await containerIp(containerId, network);

    assert.notEqual(after, before, 'the engine gave the container a new address');
    await waitForTarget(containerId, `http://${after}:8080`);
  });

  it('reports the container status', async () => {
    const [status] = await runtime.containers();

    assert.equal(status?.service, 'api');
    assert.equal(status?.container, name);
    assert.equal(status?.id, containerId);
    assert.equal(status?.image, images.ref('v2'));
    assert.equal(status?.state, 'running');
    assert.equal(status?.restartCount, 0);
    assert.match(status?.digest ?? '', /^sha256:[0-9a-f]{64}$/);
    assert.equal(status?.address, await containerIp(containerId, network));
  });
});
