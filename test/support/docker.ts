/**
 * Test helpers for the private Docker daemon that scripts/test.sh starts: a dockerode client,
 * the fixture app images (built locally, pushed to the loopback registry), networks and cleanup.
 * Nothing here ever falls back to the host's /var/run/docker.sock.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Dockerode from 'dockerode';

const DOCKER_CLI = '/usr/bin/docker';
const FIXTURE_DIR = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../fixtures/deploy-app',
);
const BASE_TAG = 'edge-test/deploy-app:base';

/** Socket of the private test daemon; throws when the harness did not start one. */
export function dockerSocket(): string {
  const socket = process.env.EDGE_TEST_DOCKER_SOCKET;
  if (!socket) {
    throw new Error(
      'EDGE_TEST_DOCKER_SOCKET is not set: run the tests through scripts/test.sh, which starts a private Docker daemon',
    );
  }
  return socket;
}

/** host:port of the loopback registry; throws when the harness did not start one. */
export function testRegistry(): string {
  const registry = process.env.EDGE_TEST_REGISTRY;
  if (!registry)
    throw new Error('EDGE_TEST_REGISTRY is not set: run the tests through scripts/test.sh');
  return registry;
}

let client: Dockerode | undefined;

export function testDocker(): Dockerode {
  client ??= new Dockerode({ socketPath: dockerSocket() });
  return client;
}

/** Short random suffix for names of containers and networks. */
export function uniqueSuffix(): string {
  return randomBytes(3).toString('hex');
}

/** Runs the Docker CLI against the private daemon and returns its stdout. */
export function dockerCli(args: string[], input?: string): Promise<string> {
  const env = { ...process.env, DOCKER_HOST: `unix://${dockerSocket()}`, DOCKER_BUILDKIT: '1' };
  return new Promise((resolve, reject) => {
    const child = spawn(DOCKER_CLI, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(stdout);
      else reject(new Error(`docker ${args.join(' ')} exited with ${code}: ${stderr.trim()}`));
    });
    child.stdin.end(input ?? '');
  });
}

/** Fixture image variants: tag → Dockerfile lines on top of the base app image. */
const VARIANTS: Record<string, string[]> = {
  v1: [],
  v2: ['ENV APP_VERSION=v2'],
  v3: ['ENV APP_VERSION=v3'],
  crash: ['ENV APP_VERSION=crash', `CMD ["sh", "-c", "echo boom >&2; exit 3"]`],
  unhealthy: ['ENV APP_VERSION=unhealthy HEALTH_STATUS=400'],
  migfail: ['ENV APP_VERSION=migfail MIGRATE_EXIT=2'],
  slow: ['ENV APP_VERSION=slow STARTUP_DELAY_MS=4000'],
  dockerhealth: [
    'ENV APP_VERSION=dockerhealth',
    `HEALTHCHECK --interval=200ms --timeout=2s --retries=30 CMD ["node", "-e", "require('http').get('http://127.0.0.1:8080/', (r) => process.exit(r.statusCode === 200 ? 0 : 1)).on('error', () => process.exit(1))"]`,
  ],
  dockerunhealthy: [
    'ENV APP_VERSION=dockerunhealthy',
    `HEALTHCHECK --interval=200ms --timeout=2s --retries=2 CMD ["sh", "-c", "echo database unreachable; exit 1"]`,
  ],
};

export type AppVariant = keyof typeof VARIANTS;

/** The fixture app's repository in the test registry and a ref per variant. */
export interface AppImages {
  repository: string;
  ref(variant: AppVariant | string): string;
}

let imagesReady: Promise<AppImages> | undefined;

/**
 * Builds the fixture app and its variants (FROM edge-test/node-base:20) and pushes them to the
 * test registry, once per process. Variants only change metadata, so they cost no disk.
 */
export function appImages(): Promise<AppImages> {
  imagesReady ??= buildAppImages();
  return imagesReady;
}

async function buildAppImages(): Promise<AppImages> {
  const repository = `${testRegistry()}/edge-test/deploy-app`;
  await dockerCli(['build', '-q', '-t', BASE_TAG, FIXTURE_DIR]);
  for (const [variant, lines] of Object.entries(VARIANTS)) {
    const dockerfile = [`FROM ${BASE_TAG}`, ...lines, ''].join('\n');
    await dockerCli(
      ['build', '-q', '-t', `${repository}:${variant}`, '-f', '-', FIXTURE_DIR],
      dockerfile,
    );
    await dockerCli(['push', '-q', `${repository}:${variant}`]);
  }
  return { repository, ref: (variant) => `${repository}:${variant}` };
}

/** Removes the local tag so the next deploy really pulls it from the registry. */
export async function untagLocal(ref: string): Promise<void> {
  await dockerCli(['rmi', ref]).catch(() => undefined);
}

/**
 * A user-defined bridge network whose bridge name the harness FORWARD rule covers. With
 * `fixedSubnet` it gets a /24 of the harness address pool (high third octet, away from the
 * engine's own allocations), so containers can be given chosen addresses.
 */
export async function createTestNetwork(prefix: string, fixedSubnet = false): Promise<string> {
  const suffix = uniqueSuffix();
  const name = `${prefix}-${suffix}`;
  await testDocker().createNetwork({
    Name: name,
    Driver: 'bridge',
    Options: { 'com.docker.network.bridge.name': `dkt-${suffix}` },
    ...(fixedSubnet ? { IPAM: { Config: [{ Subnet: poolSubnet() }] } } : {}),
  });
  return name;
}

function poolSubnet(): string {
  const pool = process.env.EDGE_TEST_ADDRESS_POOL ?? '10.213.0.0/16';
  const [first, second] = pool.split('.');
  return `${first}.${second}.${200 + Math.floor(Math.random() * 50)}.0/24`;
}

export interface ServiceContainerOptions {
  name: string;
  image: string;
  networks: { name: string; aliases?: string[] }[];
  env?: string[];
  labels?: Record<string, string>;
  restartPolicy?: string;
  start?: boolean;
}

/** Creates (and starts) a container the way Compose would: env, labels, restart policy, aliases. */
export async function runServiceContainer(options: ServiceContainerOptions): Promise<string> {
  const docker = testDocker();
  const [primary, ...others] = options.networks;
  const container = await docker.createContainer({
    name: options.name,
    Image: options.image,
    Env: options.env ?? [],
    Labels: options.labels ?? {},
    HostConfig: {
      RestartPolicy: { Name: options.restartPolicy ?? 'unless-stopped' },
      NetworkMode: primary!.name,
    },
    NetworkingConfig: { EndpointsConfig: { [primary!.name]: { Aliases: primary!.aliases ?? [] } } },
  });
  for (const network of others) {
    await docker.getNetwork(network.name).connect({
      Container: container.id,
      EndpointConfig: { Aliases: network.aliases ?? [] },
    });
  }
  if (options.start !== false) await container.start();
  return container.id;
}

/** IP address of a container on `network`. */
export async function containerIp(id: string, network: string): Promise<string> {
  const info = await testDocker().getContainer(id).inspect();
  const address = info.NetworkSettings.Networks[network]?.IPAddress;
  if (!address) throw new Error(`container ${id} has no address on ${network}`);
  return address;
}

/** Containers (any state) whose name starts with `prefix`. */
export async function containersNamed(prefix: string): Promise<Dockerode.ContainerInfo[]> {
  const all = await testDocker().listContainers({ all: true });
  return all.filter((c) => c.Names.some((name) => name.replace(/^\//, '').startsWith(prefix)));
}

/** Removes containers by name prefix and the given networks; never throws. */
export async function cleanupDocker(namePrefixes: string[], networks: string[]): Promise<void> {
  const docker = testDocker();
  for (const prefix of namePrefixes) {
    for (const container of await containersNamed(prefix).catch(() => [])) {
      await docker
        .getContainer(container.Id)
        .remove({ force: true })
        .catch(() => undefined);
    }
  }
  for (const network of networks) {
    await docker
      .getNetwork(network)
      .remove()
      .catch(() => undefined);
  }
}

/** GET over plain HTTP with a per-request timeout; resolves status and body. */
export function httpGet(
  url: string,
  headers: Record<string, string> = {},
  timeoutMs = 5_000,
): Promise<{ status: number; body: string }> {
  return fetch(url, { headers, signal: AbortSignal.timeout(timeoutMs) }).then(async (response) => ({
    status: response.status,
    body: await response.text(),
  }));
}
