// Deploy under load, started by bench/deploy-under-load.sh inside the test harness (private
// dockerd in DOCKER_HOST, loopback registry in EDGE_TEST_REGISTRY). Runs the edge in front of a v1
// backend container, keeps HTTPS load on /api/, deploys v2 with the deploy CLI and reports failed
// requests and the time the switch itself took. Every process it starts is stopped by PID.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { log } from './lib/benchmark.ts';
import {
  buildImages,
  containerTimes,
  CONTAINER,
  deployEdgeConfig,
  SECRET_ENV,
  SERVICE,
  startBackend,
} from './lib/deploy-fixture.ts';
import { renderDeployReport, summariseDeploy, type DeployTimeline } from './lib/deploy-report.ts';
import { edgeCommand } from './lib/edge-config.ts';
import { LoadLoop } from './lib/load-loop.ts';
import { ProcessGroup, waitForPort } from './lib/processes.ts';

const LOAD_CONCURRENCY = 16;
const STEADY_BEFORE_DEPLOY_MS = 3_000;
const DEPLOY_TIMEOUT_MS = 180_000;
const READY_TIMEOUT_MS = 30_000;
const CLI = path.resolve('bin/caliente-edge.js');

const workIndex = process.argv.indexOf('--work');
const workDir = process.argv[workIndex + 1];
const dockerSocket = process.env.EDGE_TEST_DOCKER_SOCKET;
const registry = process.env.EDGE_TEST_REGISTRY;
if (workIndex < 0 || workDir === undefined || !dockerSocket || !registry) {
  console.error(
    'deploy-under-load.ts runs inside the test harness: bash bench/deploy-under-load.sh',
  );
  process.exit(2);
}

const base = Number(process.env.BENCH_PORT_BASE ?? 18_100);
const ports = { http: base + 40, https: base + 41 };
const afterDeployMs = Number(process.env.BENCH_DEPLOY_LOAD_S ?? 3) * 1000;
const group = new ProcessGroup(path.join(workDir, 'pids'));
process.on('SIGINT', () => void group.stopAll().then(() => process.exit(130)));
process.on('SIGTERM', () => void group.stopAll().then(() => process.exit(143)));

try {
  const markdown = await run(workDir, dockerSocket, registry);
  process.stdout.write(markdown);
  await group.stopAll();
} catch (error) {
  log(`deploy under load failed: ${(error as Error).message}`);
  await group.stopAll();
  process.exit(1);
}

async function run(dir: string, socket: string, registryHost: string): Promise<string> {
  assertDeployPiecesExist();
  const suffix = randomBytes(3).toString('hex');
  const network = `bench-${suffix}`;

  log('building and pushing the backend images v1 and v2');
  const repository = buildImages(dir, registryHost);
  startBackend(repository, network, `dkt-bench${suffix}`);
  const secret = randomBytes(32).toString('hex');
  const edgeDir = path.join(dir, 'edge');
  mkdirSync(edgeDir, { recursive: true });
  const configFile = path.join(edgeDir, 'edge.yml');
  const fixture = { dir: edgeDir, tlsDir: dir, httpPort: ports.http, httpsPort: ports.https };
  writeFileSync(
    configFile,
    deployEdgeConfig({ ...fixture, network, repository, dockerSocket: socket }),
  );

  const edge = group.start('edge', process.execPath, edgeCommand(dir, configFile).args, {
    logFile: path.join(edgeDir, 'edge.log'),
    env: { ...process.env, [SECRET_ENV]: secret, NODE_ENV: 'production' },
  });
  await waitForPort(ports.https, edge, 'caliente-edge');
  const ca = readFileSync(path.join(dir, 'cert.pem'));
  const origin = `https://localhost:${ports.https}`;
  await waitUntilServing(origin, ca);

  log(`load on ${origin}/api/ with ${LOAD_CONCURRENCY} connections; deploying v2 in 3 s`);
  const load = new LoadLoop(origin, ca, '/api/', LOAD_CONCURRENCY);
  await delay(STEADY_BEFORE_DEPLOY_MS);
  const timeline = await deploy(origin, `${repository}:v2`, secret, path.join(dir, 'cert.pem'));
  await delay(afterDeployMs);
  const samples = await load.stop();

  const times = containerTimes(CONTAINER);
  const summary = summariseDeploy(samples, timeline, times);
  const markdown = renderDeployReport(summary);
  writeFileSync(path.join(dir, 'deploy-report.md'), markdown);
  return markdown;
}

/** Fails with what is missing while the deploy endpoint or its CLI are not built yet. */
function assertDeployPiecesExist(): void {
  if (!existsSync(path.resolve('src/main.ts'))) {
    throw new Error('src/main.ts does not exist yet: the edge has no entry point to run');
  }
  if (!existsSync(CLI)) {
    throw new Error(`the deploy CLI ${path.relative(process.cwd(), CLI)} does not exist yet`);
  }
}

/** Waits until the edge routes /api/ to the v1 container it discovered through Docker. */
async function waitUntilServing(origin: string, ca: Buffer): Promise<void> {
  const probe = new LoadLoop(origin, ca, '/api/', 1);
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    await delay(200);
    if (probe.samples.some((sample) => sample.body?.version === 'v1')) break;
  }
  const samples = await probe.stop();
  if (!samples.some((sample) => sample.body?.version === 'v1')) {
    const last = samples.at(-1);
    throw new Error(
      `the edge did not serve v1 on /api/ within ${READY_TIMEOUT_MS} ms (last: ${JSON.stringify(last)})`,
    );
  }
}

/** Runs `caliente-edge deploy` and records when it was called, its output lines and its exit. */
async function deploy(
  origin: string,
  image: string,
  secret: string,
  caFile: string,
): Promise<DeployTimeline> {
  const args = [
    CLI,
    'deploy',
    '--url',
    origin,
    '--service',
    SERVICE,
    '--image',
    image,
    '--ca',
    caFile,
  ];
  const env = { ...process.env, EDGE_DEPLOY_SECRET: secret };
  const calledAt = Date.now();
  log(`deploy: ${args.slice(1).join(' ')}`);

  const child = group.start('deploy-cli', process.execPath, args, { env, pipeOutput: true });
  const lines: { at: number; text: string }[] = [];
  const record = (chunk: Buffer): void => {
    for (const text of chunk
      .toString()
      .split('\n')
      .filter((line) => line !== '')) {
      lines.push({ at: Date.now(), text });
    }
  };
  child.stdout?.on('data', record);
  child.stderr?.on('data', record);
  const timer = setTimeout(() => child.kill('SIGKILL'), DEPLOY_TIMEOUT_MS);
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  clearTimeout(timer);
  return { calledAt, finishedAt: Date.now(), exitCode: code, lines };
}
