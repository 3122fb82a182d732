import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { DockerodeEngine } from '../../src/docker/dockerode-engine.ts';
import { serviceKey } from '../../src/targets/registry.ts';
import {
  deployTestConfig,
  newSecret,
  PROD_SECRET_ENV,
  readLines,
  STAGING_SECRET_ENV,
  signedRequest,
  startDeployApi,
  type DeployApiServer,
} from '../support/deploy.ts';
import {
  appImages,
  cleanupDocker,
  containerIp,
  containersNamed,
  createTestNetwork,
  dockerSocket,
  httpGet,
  runServiceContainer,
  testDocker,
  uniqueSuffix,
  untagLocal,
  type AppImages,
} from '../support/docker.ts';

const SITE_HOST = 'app.example.test';

describe('deploy swap on a real engine', () => {
  const prefix = `ds-${uniqueSuffix()}`;
  const container = `${prefix}-web`;
  const secret = newSecret();
  const stagingSecret = newSecret();
  let images: AppImages;
  let network: string;
  let api: DeployApiServer;
  let oldId: string;

  before(async () => {
    images = await appImages();
    network = await createTestNetwork('dsw');
    const config = deployTestConfig({
      repository: images.repository,
      port: 8080,
      network,
      services: {
        web: {
          container,
          preDeploy: ['node', '/app/migrate.js'],
          health: { path: '/health', intervalMs: 100, timeoutMs: 6_000 },
        },
        // Without a health path the image's Docker HEALTHCHECK decides.
        'web-staging': { container: `${prefix}-hc`, health: { intervalMs: 100, timeoutMs: 8_000 } },
      },
    });
    api = await startDeployApi(config, {
      engine: new DockerodeEngine(dockerSocket()),
      env: { [PROD_SECRET_ENV]: secret, [STAGING_SECRET_ENV]: stagingSecret },
    });
  });

  after(async () => {
    await api.close();
    await cleanupDocker([prefix], [network]);
  });

  beforeEach(async () => {
    await cleanupDocker([prefix], []);
    oldId = await startV1(container);
  });

  /** The running v1 container as Compose would create it; its health check needs the site host. */
  async function startV1(name: string, labels: Record<string, string> = {}): Promise<string> {
    const id = await runServiceContainer({
      name,
      image: images.ref('v1'),
      env: ['FOO=bar', `REQUIRE_HOST=${SITE_HOST}`],
      labels: {
        'com.docker.compose.project': 'caliente',
        'com.docker.compose.service': 'web',
        ...labels,
      },
      networks: [{ name: network, aliases: ['web'] }],
    });
    await waitForVersion(id, 'v1');
    return id;
  }

  async function deploy(image: string): Promise<Record<string, unknown>> {
    const response = await signedRequest(api.url, '/_edge/deploy', {
      body: { service: 'web', image },
      secret,
    });
    assert.equal(response.status, 200);
    return (await readLines(response)).at(-1)!;
  }

  async function waitForVersion(id: string, version: string): Promise<void> {
    const url = `http://${await containerIp(id, network)}:8080/`;
    const deadline = Date.now() + 10_000;
    for (;;) {
      const body = await httpGet(url, {}, 1_000).then(
        (r) => JSON.parse(r.body).version as string,
        () => undefined,
      );
      if (body === version) return;
      if (Date.now() > deadline) throw new Error(`container ${id} did not serve ${version}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** Asserts that the old container still runs under its name and nothing the deploy made is left. */
  async function assertOldServing(): Promise<void> {
    const left = await containersNamed(prefix);
    assert.deepEqual(
      left.map((c) => c.Id),
      [oldId],
    );
    assert.equal(left[0]!.State, 'running');
    await waitForVersion(oldId, 'v1');
  }

  it('pulls and swaps to the new image', async () => {
    await untagLocal(images.ref('v2'));

    const result = await deploy(images.ref('v2'));

    assert.equal(result.result, 'succeeded', JSON.stringify(result));
    const left = await containersNamed(prefix);
    assert.equal(left.length, 1);
    assert.equal(left[0]!.Names[0], `/${container}`);
    assert.notEqual(left[0]!.Id, oldId);
    await waitForVersion(left[0]!.Id, 'v2');

    const info = await testDocker().getContainer(left[0]!.Id).inspect();
    assert.ok(info.Config.Env.includes('FOO=bar'));
    assert.equal(info.Config.Labels['com.docker.compose.service'], 'web');
    assert.ok(info.NetworkSettings.Networks[network]?.Aliases?.includes('web'));
    assert.equal(info.HostConfig.RestartPolicy?.Name, 'unless-stopped');
    const target = api.context.targets.slot(serviceKey('web')).current!;
    assert.equal(target.id, left[0]!.Id);
    assert.equal(target.origin, `http://${await containerIp(left[0]!.Id, network)}:8080`);
    assert.match(String(result.digest), /^sha256:[0-9a-f]{64}$/);
  });

  it('fails on a missing tag and keeps the old container', async () => {
    const result = await deploy(images.ref('no-such-tag'));

    assert.equal(result.failedStep, 'pull');
    assert.match(String(result.error), /manifest unknown|not found/);
    await assertOldServing();
  });

  it('fails on a crashing image with its exit code and log', async () => {
    const result = await deploy(images.ref('crash'));

    assert.equal(result.failedStep, 'health');
    assert.match(String(result.error), /exit code 3, last log line: boom/);
    await assertOldServing();
  });

  it('fails when the health check answers 400', async () => {
    const result = await deploy(images.ref('unhealthy'));

    assert.equal(result.failedStep, 'health');
    assert.match(String(result.error), /health check returned HTTP 400/);
    await assertOldServing();
  });

  it('fails on a failing migration', async () => {
    const result = await deploy(images.ref('migfail'));

    assert.equal(result.failedStep, 'pre-deploy');
    assert.match(
      String(result.error),
      /exited with code 2: migration failed: relation "orders" does not exist/,
    );
    await assertOldServing();
  });

  it('replaces a stale container holding the name', async () => {
    await testDocker().getContainer(oldId).remove({ force: true });
    const serving = await startV1(`${prefix}-web-deploy-old`, { 'caliente-edge.service': 'web' });
    const stale = await testDocker().createContainer({
      name: container,
      Image: images.ref('v1'),
      Cmd: ['true'],
    });

    const result = await deploy(images.ref('v2'));

    assert.equal(result.result, 'succeeded', JSON.stringify(result));
    const left = await containersNamed(prefix);
    assert.equal(left.length, 1);
    assert.equal(left[0]!.Names[0], `/${container}`);
    assert.ok(![serving, stale.id].includes(left[0]!.Id));
  });

  it('rolls back to the previous digest', async () => {
    await deploy(images.ref('v2'));

    const response = await signedRequest(api.url, '/_edge/rollback', {
      body: { service: 'web' },
      secret,
    });
    const result = (await readLines(response)).at(-1)!;

    assert.equal(result.result, 'succeeded', JSON.stringify(result));
    assert.match(String(result.image), /@sha256:/);
    const left = await containersNamed(prefix);
    assert.equal(left.length, 1);
    await waitForVersion(left[0]!.Id, 'v1');
  });

  it('waits for the image Docker health check', async () => {
    await startV1(`${prefix}-hc`);
    const body = { service: 'web-staging', image: images.ref('dockerhealth') };

    const response = await signedRequest(api.url, '/_edge/deploy', { body, secret: stagingSecret });
    const lines = await readLines(response);

    assert.equal(lines.at(-1)!.result, 'succeeded', JSON.stringify(lines.at(-1)));
    const health = lines.find((line) => line.step === 'health' && line.status === 'ok');
    assert.equal(health?.message, 'Docker health check healthy');
  });

  it('fails when the image Docker health check turns unhealthy', async () => {
    const hcOld = await startV1(`${prefix}-hc`);
    const body = { service: 'web-staging', image: images.ref('dockerunhealthy') };

    const response = await signedRequest(api.url, '/_edge/deploy', { body, secret: stagingSecret });
    const result = (await readLines(response)).at(-1)!;

    assert.equal(result.failedStep, 'health');
    assert.match(
      String(result.error),
      /Docker health check reported unhealthy: database unreachable/,
    );
    const left = await containersNamed(`${prefix}-hc`);
    assert.deepEqual(
      left.map((c) => c.Id),
      [hcOld],
    );
  });
});
