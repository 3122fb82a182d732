import { randomBytes } from 'node:crypto';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { statSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { DOCKER, sh } from './stack-images.ts';

const COMPOSE_DIR = path.resolve('compose');

/** Addresses of the stack's two networks, chosen inside the test daemon's address pool. */
export interface StackNetworks {
  staging: { subnet: string; gateway: string; bridge: string };
  prod: { subnet: string; gateway: string; bridge: string };
  /** Fixed address of the edge on the staging network, so DNS can point at it before start. */
  edgeAddress: string;
}

export interface StackSecrets {
  deployStaging: string;
  deployProd: string;
  adminPassword: string;
}

export function stackNetworks(
  pool = process.env.EDGE_TEST_ADDRESS_POOL ?? '10.213.0.0/16',
): StackNetworks {
  const [a, b] = pool.split('.');
  const net = (third: number, bridge: string) => ({
    subnet: `${a}.${b}.${third}.0/24`,
    gateway: `${a}.${b}.${third}.1`,
    bridge,
  });
  return {
    staging: net(240, 'dkt-ce2e-stg'),
    prod: net(241, 'dkt-ce2e-prd'),
    edgeAddress: `${a}.${b}.240.10`,
  };
}

export interface StackOptions {
  dir: string;
  edgeImage: string;
  postgresImage: string;
  imagePrefix: string;
  networks: StackNetworks;
  acmeDirectory: string;
  pebbleCaPath: string;
  socket: string;
  secrets: StackSecrets;
}

/**
 * Lays out the stack as a user does on the VPS: the compose/ folder with the three env files
 * filled in. What only the test needs goes into docker-compose.override.yml (which Compose
 * reads on its own) and into a few edge.yml fields: Pebble instead of Let's Encrypt, the
 * loopback registry instead of GHCR, the test daemon's socket, fixed test subnets.
 */
export async function prepareStack(options: StackOptions): Promise<void> {
  const { dir } = options;
  await cp(COMPOSE_DIR, dir, { recursive: true });
  await writeBackendEnv(dir, 'staging');
  await writeBackendEnv(dir, 'prod');
  await writeStackEnv(options);
  await writeEdgeConfig(options);
  await writeOverride(options);
}

/** Runs docker-compose (1.29 here) in the stack folder against the test daemon. */
export async function compose(dir: string, ...args: string[]): Promise<string> {
  return sh('docker-compose', args, { cwd: dir });
}

async function writeBackendEnv(dir: string, environment: 'staging' | 'prod'): Promise<void> {
  const example = await readFile(path.join(dir, `.env.${environment}.example`), 'utf8');
  const filled = example
    .replace(/^SECRET_KEY=.*$/m, `SECRET_KEY=${randomBytes(24).toString('hex')}`)
    .replace(/^DB_PASSWORD=.*$/m, `DB_PASSWORD=${randomBytes(12).toString('hex')}`);
  await writeFile(path.join(dir, `.env.${environment}`), filled);
}

async function writeStackEnv(options: StackOptions): Promise<void> {
  const hash = (
    await sh('bash', [
      '-c',
      'printf %s "$1" | "$2" run --rm -i "$3" hash-password',
      'hash',
      options.secrets.adminPassword,
      DOCKER,
      options.edgeImage,
    ])
  ).trim();
  const values: Record<string, string> = {
    COMPOSE_PROJECT_NAME: 'calientee2e',
    IMAGE_PREFIX: options.imagePrefix,
    EDGE_IMAGE: options.edgeImage,
    DOCKER_GID: String(statSync(options.socket).gid),
    POSTGRES_PASSWORD: randomBytes(12).toString('hex'),
    EDGE_ADMIN_PASSWORD_HASH: `'${hash}'`,
    EDGE_DEPLOY_SECRET_STAGING: options.secrets.deployStaging,
    EDGE_DEPLOY_SECRET_PROD: options.secrets.deployProd,
    // Random host ports on loopback instead of 80 and 443 on every address.
    EDGE_HTTP_PUBLISH: '127.0.0.1:',
    EDGE_HTTPS_PUBLISH: '127.0.0.1:',
  };
  let env = await readFile(path.join(options.dir, '.env.example'), 'utf8');
  for (const [key, value] of Object.entries(values)) {
    const line = new RegExp(`^#? ?${key}=.*$`, 'm');
    env = line.test(env) ? env.replace(line, `${key}=${value}`) : `${env}${key}=${value}\n`;
  }
  await writeFile(path.join(options.dir, '.env'), env);
}

async function writeEdgeConfig(options: StackOptions): Promise<void> {
  const file = path.join(options.dir, 'edge.yml');
  const config = parseYaml(await readFile(file, 'utf8'));
  Object.assign(config.tls.acme, {
    directory: options.acmeDirectory,
    caBundle: '/etc/caliente-edge/pebble-ca.pem',
    // Pebble answers in milliseconds: poll fast, retry a failed order after 2 s.
    pollMinMs: 100,
    pollMaxMs: 500,
    retryScheduleMs: [2000],
  });
  for (const service of Object.values(config.services) as { image: string }[]) {
    service.image = service.image.replace('ghcr.io/your-github-user', options.imagePrefix);
  }
  await writeFile(file, stringifyYaml(config));
}

async function writeOverride(options: StackOptions): Promise<void> {
  const { networks } = options;
  const network = (name: string, spec: StackNetworks['staging']) => ({
    // docker-compose 1.29 replaces a network entry named in an override, so the name is repeated.
    name,
    driver_opts: { 'com.docker.network.bridge.name': spec.bridge },
    ipam: { config: [{ subnet: spec.subnet }] },
  });
  const override = {
    services: {
      edge: {
        networks: { staging: { ipv4_address: networks.edgeAddress }, prod: {} },
        volumes: [
          `${options.socket}:/var/run/docker.sock`,
          `${options.pebbleCaPath}:/etc/caliente-edge/pebble-ca.pem:ro`,
        ],
        // The image checks every 30 s; the test waits for the first healthy result.
        healthcheck: { interval: '1s' },
      },
      postgres: { image: options.postgresImage },
    },
    networks: {
      staging: network('caliente_staging', networks.staging),
      prod: network('caliente_prod', networks.prod),
    },
  };
  await writeFile(path.join(options.dir, 'docker-compose.override.yml'), stringifyYaml(override));
}
