import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DockerodeEngine } from '../../src/docker/dockerode-engine.ts';
import { createFromPlan, planRecreate } from '../../src/docker/recreate.ts';
import {
  appImages,
  cleanupDocker,
  containerIp,
  createTestNetwork,
  dockerSocket,
  httpGet,
  runServiceContainer,
  testDocker,
  uniqueSuffix,
  type AppImages,
} from '../support/docker.ts';

describe('docker recreate on a real engine', () => {
  const prefix = `rc-${uniqueSuffix()}`;
  const networks: string[] = [];
  let images: AppImages;
  let engine: DockerodeEngine;
  let oldId: string;
  let newId: string;

  before(async () => {
    images = await appImages();
    engine = new DockerodeEngine(dockerSocket());
    networks.push(await createTestNetwork('rcf'), await createTestNetwork('rcb'));
    oldId = await runServiceContainer({
      name: `${prefix}-web`,
      image: images.ref('v1'),
      env: ['FOO=bar'],
      labels: { 'com.docker.compose.project': 'caliente', 'com.docker.compose.service': 'web' },
      networks: [
        { name: networks[0]!, aliases: ['web', 'web-front'] },
        { name: networks[1]!, aliases: ['web-back'] },
      ],
    });
    const current = (await engine.inspectContainer(oldId))!;
    const oldImage = await engine.inspectImage(current.Image);
    const plan = planRecreate(current, oldImage, images.ref('v2'), `${prefix}-web-next`, {
      'caliente-edge.service': 'web',
    });
    newId = await createFromPlan(engine, plan);
    await engine.startContainer(newId);
  });

  after(() => cleanupDocker([prefix], networks));

  it('runs the new image next to the old one', async () => {
    const oldBody = JSON.parse(
      (await httpGet(`http://${await containerIp(oldId, networks[0]!)}:8080/`)).body,
    );
    const newBody = await pollJson(`http://${await containerIp(newId, networks[0]!)}:8080/`);

    assert.equal(oldBody.version, 'v1');
    assert.equal(newBody.version, 'v2');
    assert.equal(newBody.foo, 'bar');
  });

  it('keeps user env and labels and takes the new image defaults', async () => {
    const info = await testDocker().getContainer(newId).inspect();

    assert.ok(info.Config.Env.includes('FOO=bar'));
    assert.ok(info.Config.Env.includes('APP_VERSION=v2'));
    assert.ok(!info.Config.Env.includes('APP_VERSION=v1'));
    assert.equal(info.Config.Labels['com.docker.compose.project'], 'caliente');
    assert.equal(info.Config.Labels['caliente-edge.service'], 'web');
    assert.equal(info.HostConfig.RestartPolicy?.Name, 'unless-stopped');
  });

  it('joins every network with its aliases and no stale id', async () => {
    const info = await testDocker().getContainer(newId).inspect();
    const front = info.NetworkSettings.Networks[networks[0]!]!;
    const back = info.NetworkSettings.Networks[networks[1]!]!;

    assert.ok(front.Aliases?.includes('web'));
    assert.ok(front.Aliases?.includes('web-front'));
    assert.ok(back.Aliases?.includes('web-back'));
    assert.ok(!front.Aliases?.includes(oldId.slice(0, 12)));
    assert.ok(!back.Aliases?.includes(oldId.slice(0, 12)));
    assert.notEqual(info.Config.Hostname, oldId.slice(0, 12));
  });
});

async function pollJson(url: string): Promise<{ version: string; foo: string | null }> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      return JSON.parse((await httpGet(url, {}, 1_000)).body);
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
