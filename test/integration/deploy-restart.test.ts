import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { newSecret } from '../support/deploy.ts';
import {
  deployEdgeFixture,
  getOnce,
  runDeployCli,
  waitForEdgeVersion,
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

const SECRET_ENV = 'EDGE_TEST_RESTART_DEPLOY_SECRET';
const EDGE_BIN = path.resolve('bin/caliente-edge.js');

/** The edge as a separate process, so the test can kill it with SIGKILL mid-deploy. */
interface EdgeProcess {
  child: ChildProcess;
  port: number;
}

describe('deploy with the edge killed mid-deploy', () => {
  const prefix = `dr-${uniqueSuffix()}`;
  const container = `${prefix}-api`;
  const secret = newSecret();
  let images: AppImages;
  let network: string;
  let fixture: DeployEdgeFixture;
  let configFile: string;
  let httpsPort: number;
  let edge: EdgeProcess | undefined;
  const started: ChildProcess[] = [];

  before(async () => {
    images = await appImages();
    network = await createTestNetwork('drw');
    fixture = await deployEdgeFixture({
      container,
      repository: images.repository,
      network,
      secretEnv: SECRET_ENV,
      socket: dockerSocket(),
      // A held request keeps the drain busy, so the kill lands between switch and cleanup.
      services: { drainTimeoutMs: 30_000 },
    });
    configFile = path.join(fixture.dir, 'edge.json');
    httpsPort = await freePort();
    const listen = { address: '127.0.0.1', httpPort: await freePort(), httpsPort };
    writeFileSync(configFile, JSON.stringify({ ...fixture.config, listen }));
  });

  after(async () => {
    await killEdge();
    await cleanupDocker([prefix], [network]);
  });

  async function startV1(): Promise<string> {
    await killEdge();
    await cleanupDocker([prefix], []);
    return runServiceContainer({
      name: container,
      image: images.ref('v1'),
      networks: [{ name: network, aliases: ['api'] }],
    });
  }

  /** Kills every edge process this file started that still runs, and waits for their exit. */
  async function killEdge(): Promise<void> {
    for (const child of started) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }
  }

  function runEdge(): EdgeProcess {
    const running = startEdgeProcess(configFile, secret, httpsPort);
    started.push(running.child);
    return running;
  }

  /** Runs the CLI and SIGKILLs the edge as soon as `step` reports `running`. */
  async function deployAndKillAt(
    image: string,
    step: string,
  ): Promise<{ code: number; stderr: string }> {
    const running = edge!;
    const exited = new Promise((resolve) => running.child.once('exit', resolve));
    const { code, stderr } = await runDeployCli({
      port: running.port,
      image,
      caFile: fixture.caFile,
      secret,
      json: true,
      onStdout: (output) => {
        if (output.includes(`{"step":"${step}","status":"running"}`)) running.child.kill('SIGKILL');
      },
    });
    await exited;
    return { code, stderr };
  }

  it('keeps the old container when killed before the switch', async () => {
    const oldId = await startV1();
    edge = runEdge();
    await waitForEdgeVersion(edge.port, 'v1');

    const cut = await deployAndKillAt(images.ref('slow'), 'health');
    assert.equal(
      (await containersNamed(prefix)).length,
      2,
      'old and new container exist while the edge is down',
    );
    edge = runEdge();

    await waitForEdgeVersion(edge.port, 'v1');

    assert.equal(cut.code, 1);
    assert.match(cut.stderr, /the connection closed before the deploy finished/);
    const left = await containersNamed(prefix);
    assert.deepEqual(
      left.map((c) => [c.Id, c.Names[0], c.State]),
      [[oldId, `/${container}`, 'running']],
    );
    assert.equal(lastRecord(fixture).state, 'failed');
    await killEdge();
  });

  it('keeps the new container when killed after the switch', async () => {
    const oldId = await startV1();
    edge = runEdge();
    await waitForEdgeVersion(edge.port, 'v1');
    const held = getOnce(edge.port, '/slow?ms=20000').catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 200));

    await deployAndKillAt(images.ref('v2'), 'drain');
    await held;
    assert.equal(
      (await containersNamed(prefix)).length,
      2,
      'old and new container exist while the edge is down',
    );
    edge = runEdge();
    await waitForEdgeVersion(edge.port, 'v2');

    const left = await containersNamed(prefix);
    assert.equal(left.length, 1);
    assert.notEqual(left[0]!.Id, oldId);
    assert.equal(left[0]!.Names[0], `/${container}`);
    assert.equal(left[0]!.State, 'running');
    assert.equal(lastRecord(fixture).state, 'succeeded');
    await killEdge();
  });
});

/**
 * Starts `caliente-edge serve` on the configured ports. The edge's log is buffered, so
 * readiness is seen from the outside: the caller polls the edge until it responds.
 */
function startEdgeProcess(configFile: string, secret: string, port: number): EdgeProcess {
  const child = spawn(process.execPath, [EDGE_BIN, 'serve', '--config', configFile], {
    env: { ...process.env, [SECRET_ENV]: secret },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return { child, port };
}

/** Returns a loopback port that was free a moment ago. */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function lastRecord(fixture: DeployEdgeFixture): { state: string } {
  const state = JSON.parse(
    readFileSync(path.join(fixture.dir, 'state', 'deploys.json'), 'utf8'),
  ) as {
    history: { state: string }[];
  };
  return state.history.at(-1)!;
}
