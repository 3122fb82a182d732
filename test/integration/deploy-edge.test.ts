import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { parseConfig } from '../../src/config/load.ts';
import { startEdge, type RunningEdge } from '../../src/edge.ts';
import { silentLogger } from '../../src/log.ts';
import { newSecret } from '../support/deploy.ts';
import {
  deployEdgeFixture,
  EDGE_HOST,
  runDeployCli,
  startLoad,
  waitForEdgeVersion,
  type CliResult,
  type DeployEdgeFixture,
} from '../support/deploy-edge.ts';
import {
  appImages,
  cleanupDocker,
  containersNamed,
  createTestNetwork,
  dockerSocket,
  runServiceContainer,
  uniqueSuffix,
  type AppImages,
} from '../support/docker.ts';

const SECRET_ENV = 'EDGE_TEST_E2E_DEPLOY_SECRET';

describe('deploy through the edge', () => {
  const prefix = `de-${uniqueSuffix()}`;
  const container = `${prefix}-api`;
  const secret = newSecret();
  let images: AppImages;
  let network: string;
  let fixture: DeployEdgeFixture;
  let edge: RunningEdge;
  let port: number;

  before(async () => {
    images = await appImages();
    network = await createTestNetwork('dew');
    await runServiceContainer({
      name: container,
      image: images.ref('v1'),
      networks: [{ name: network, aliases: ['api'] }],
    });
    fixture = await deployEdgeFixture({
      container,
      repository: images.repository,
      network,
      secretEnv: SECRET_ENV,
      socket: dockerSocket(),
    });
    process.env[SECRET_ENV] = secret;
    edge = await startEdge(parseConfig(fixture.config), silentLogger);
    port = edge.servers.ports().https;
    await waitForEdgeVersion(port, 'v1');
  });

  after(async () => {
    await edge?.stop();
    delete process.env[SECRET_ENV];
    await cleanupDocker([prefix], [network]);
  });

  const cliDeploy = (image: string): Promise<CliResult> =>
    runDeployCli({ port, image, caFile: fixture.caFile, secret });

  it('deploys under load without a failed request', async () => {
    const load = startLoad(port);
    await new Promise((resolve) => setTimeout(resolve, 300));

    const deploy = await cliDeploy(images.ref('v2'));
    await new Promise((resolve) => setTimeout(resolve, 300));
    const result = await load.stop();

    assert.equal(deploy.code, 0, deploy.stdout + deploy.stderr);
    assert.deepEqual(result.failures.slice(0, 5), []);
    assert.equal(result.failed, 0);
    assert.ok(result.ok > 20, `only ${result.ok} requests completed`);
    // Slow requests that started on v1 may finish after the first v2 responses.
    assert.deepEqual([...new Set(result.versions)].sort(), ['v1', 'v2']);
    assert.equal(result.versions.at(-1), 'v2');
    const left = await containersNamed(prefix);
    assert.equal(left.length, 1);
    assert.equal(left[0]!.Names[0], `/${container}`);
  });

  it('closes WebSockets with 1012 and lets clients reconnect', async () => {
    await waitForEdgeVersion(port, 'v2');
    const clients = await Promise.all([1, 2, 3].map(() => openSocket()));
    for (const client of clients) assert.equal(await exchange(client.socket, 'hello'), 'v2:hello');

    const deploy = await cliDeploy(images.ref('v3'));
    const codes = await Promise.all(clients.map((client) => client.closed));

    assert.equal(deploy.code, 0, deploy.stdout + deploy.stderr);
    assert.deepEqual(codes, [1012, 1012, 1012]);
    const again = await openSocket();
    assert.equal(await exchange(again.socket, 'back'), 'v3:back');
    again.socket.close();
  });

  it('answers 409 to a second deploy of the same service', async () => {
    const first = cliDeploy(images.ref('slow'));
    await new Promise((resolve) => setTimeout(resolve, 1_000));

    const second = await cliDeploy(images.ref('v2'));
    const firstResult = await first;

    assert.equal(second.code, 1);
    assert.match(
      second.stderr,
      /HTTP 409: a deploy of service api is already running: \S+ \(EDGE_DEPLOY_IN_PROGRESS\)/,
    );
    assert.equal(firstResult.code, 0, firstResult.stdout + firstResult.stderr);
    await waitForEdgeVersion(port, 'slow');
  });

  it('rejects a bad signature through the edge', async () => {
    const { code, stderr } = await runDeployCli({
      port,
      image: images.ref('v1'),
      caFile: fixture.caFile,
      secret: newSecret(),
    });

    assert.equal(code, 1);
    assert.match(stderr, /HTTP 401: invalid signature/);
    await waitForEdgeVersion(port, 'slow');
  });

  /** Opens a WebSocket through the edge; `closed` resolves with the close code. */
  async function openSocket(): Promise<{ socket: WebSocket; closed: Promise<number> }> {
    // ws sends the URL's host as SNI and Host, so the URL names the site.
    const socket = new WebSocket(`wss://${EDGE_HOST}:${port}/ws`, { rejectUnauthorized: false });
    const closed = new Promise<number>((resolve) => socket.on('close', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
    });
    return { socket, closed };
  }
});

function exchange(socket: WebSocket, text: string): Promise<string> {
  return new Promise((resolve) => {
    socket.once('message', (data) => resolve(data.toString()));
    socket.send(text);
  });
}
