import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';

/** Debian's 20.10 client, the one the test harness uses: BuildKit works without buildx. */
const DOCKER = '/usr/bin/docker';
export const SERVICE = 'backend';
export const CONTAINER = 'bench_backend';
export const APP_PORT = 8000;
export const SECRET_ENV = 'BENCH_DEPLOY_SECRET';

/** Runs the docker client against the private engine in DOCKER_HOST and returns its stdout. */
export function docker(...args: string[]): string {
  const env = { ...process.env, DOCKER_BUILDKIT: '1' };
  return execFileSync(DOCKER, args, {
    env,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  }).trim();
}

/**
 * Builds the backend image v1 (the app in a node base image) and v2 (an ENV-only layer on v1),
 * and pushes both to the loopback registry so the deploy pulls for real.
 */
export function buildImages(workDir: string, registry: string): string {
  const repository = `${registry}/bench/backend`;
  const dir = path.join(workDir, 'app');
  mkdirSync(dir, { recursive: true });
  copyFileSync(path.resolve('bench/deploy/app-server.mjs'), path.join(dir, 'server.mjs'));
  writeFileSync(
    path.join(dir, 'Dockerfile'),
    'FROM edge-test/node-base:20\nCOPY server.mjs /app/server.mjs\n' +
      `ENV APP_VERSION=v1 PORT=${APP_PORT}\nCMD ["node", "/app/server.mjs"]\n`,
  );
  writeFileSync(path.join(dir, 'Dockerfile.v2'), `FROM ${repository}:v1\nENV APP_VERSION=v2\n`);

  docker('build', '-q', '-t', `${repository}:v1`, dir);
  docker('build', '-q', '-t', `${repository}:v2`, '-f', path.join(dir, 'Dockerfile.v2'), dir);
  docker('push', '-q', `${repository}:v1`);
  docker('push', '-q', `${repository}:v2`);
  // The deploy must pull v2 from the registry, not find it locally.
  docker('rmi', `${repository}:v2`);
  return repository;
}

/** Starts the running v1 container on a network of its own, as Compose would have. */
export function startBackend(repository: string, network: string, bridge: string): string {
  docker('network', 'create', '-o', `com.docker.network.bridge.name=${bridge}`, network);
  return docker(
    'run',
    '-d',
    '--name',
    CONTAINER,
    '--network',
    network,
    '--network-alias',
    SERVICE,
    '--restart',
    'unless-stopped',
    `${repository}:v1`,
  );
}

/** Where a container's timestamps sit, in milliseconds since the epoch. */
export function containerTimes(name: string): { createdAt: number; startedAt: number; id: string } {
  const [id = '', created = '', started = ''] = docker(
    'inspect',
    '-f',
    '{{.Id}} {{.Created}} {{.State.StartedAt}}',
    name,
  ).split(' ');
  return { id, createdAt: Date.parse(created), startedAt: Date.parse(started) };
}

export interface EdgeFixtureOptions {
  dir: string;
  tlsDir: string;
  httpPort: number;
  httpsPort: number;
  network: string;
  repository: string;
  dockerSocket: string;
}

/** The edge's configuration: one site on localhost whose /api/ route is the deployable service. */
export function deployEdgeConfig(options: EdgeFixtureOptions): string {
  return stringify({
    listen: { address: '127.0.0.1', httpPort: options.httpPort, httpsPort: options.httpsPort },
    certsDir: path.join(options.dir, 'certs'),
    stateDir: path.join(options.dir, 'state'),
    log: { level: 'info', access: true },
    tls: {
      certificates: [
        {
          hosts: ['localhost'],
          cert: path.join(options.tlsDir, 'cert.pem'),
          key: path.join(options.tlsDir, 'key.pem'),
        },
      ],
    },
    sites: [
      {
        name: 'bench',
        hosts: ['localhost'],
        network: options.network,
        routes: [{ path: '/api/', service: SERVICE }],
      },
    ],
    services: {
      [SERVICE]: {
        container: CONTAINER,
        image: options.repository,
        port: APP_PORT,
        environment: 'bench',
        health: { path: '/api/health' },
      },
    },
    deploy: { environments: { bench: { secretEnv: SECRET_ENV } } },
    docker: { socket: options.dockerSocket },
  });
}
