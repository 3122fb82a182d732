import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { loadConfigFile } from '../../src/config/load.ts';

const COMPOSE_DIR = path.resolve('compose');
const MIB = 1024 * 1024;
/** RAM of the VPS the stack is sized for, less about 400 MB for the OS and Docker itself. */
const STACK_MEMORY_BUDGET_BYTES = (2048 - 400) * MIB;

interface ComposeService {
  image: string;
  container_name?: string;
  ports?: unknown[];
  networks?: Record<string, unknown>;
  mem_limit?: string | number;
  environment?: Record<string, string>;
  env_file?: string[];
  volumes?: unknown[];
}

interface ComposeFile {
  services: Record<string, ComposeService>;
  networks: Record<string, { name?: string }>;
}

/** Parses Compose memory sizes such as 192m or 201326592. */
function bytes(value: string | number | undefined): number {
  if (typeof value === 'number') return value;
  const match = /^(\d+)([kmg]?)b?$/i.exec(value ?? '');
  assert.ok(match, `memory limit ${value} is readable`);
  const unit = { '': 1, k: 1024, m: MIB, g: 1024 * MIB }[
    match[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'
  ];
  return Number(match[1]) * unit;
}

describe('compose stack files', () => {
  let dir: string;
  let compose: ComposeFile;

  before(() => {
    // A copy filled in the way the first-time steps describe, so the check sees real values.
    dir = mkdtempSync(path.join(tmpdir(), 'ce-compose-'));
    cpSync(COMPOSE_DIR, dir, { recursive: true });
    copyFileSync(path.join(dir, '.env.staging.example'), path.join(dir, '.env.staging'));
    copyFileSync(path.join(dir, '.env.prod.example'), path.join(dir, '.env.prod'));
    const env = readFileSync(path.join(dir, '.env.example'), 'utf8')
      .replace(/^DOCKER_GID=$/m, 'DOCKER_GID=998')
      .replace(/^POSTGRES_PASSWORD=$/m, 'POSTGRES_PASSWORD=abc123')
      .replace(
        /^EDGE_ADMIN_PASSWORD_HASH=''$/m,
        "EDGE_ADMIN_PASSWORD_HASH='scrypt$32768$8$1$c2FsdA==$aGFzaA=='",
      )
      .replace(/^EDGE_DEPLOY_SECRET_STAGING=$/m, 'EDGE_DEPLOY_SECRET_STAGING=s1')
      .replace(/^EDGE_DEPLOY_SECRET_PROD=$/m, 'EDGE_DEPLOY_SECRET_PROD=p1');
    writeFileSync(path.join(dir, '.env'), env);

    const result = spawnSync('docker-compose', ['config'], { cwd: dir, encoding: 'utf8' });
    assert.equal(
      result.error,
      undefined,
      'docker-compose is installed (scripts/install-test-deps.sh)',
    );
    assert.equal(result.status, 0, `docker-compose config failed: ${result.stderr}`);
    compose = parseYaml(result.stdout) as ComposeFile;
  });

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('only the edge publishes ports', () => {
    const publishing = Object.entries(compose.services)
      .filter(([, service]) => (service.ports ?? []).length > 0)
      .map(([name]) => name);
    assert.deepEqual(publishing, ['edge']);
    assert.equal(compose.services.edge!.ports!.length, 2);
  });

  it('limits memory to fit 2 GB', () => {
    let total = 0;
    for (const [name, service] of Object.entries(compose.services)) {
      assert.ok(service.mem_limit !== undefined, `${name} has mem_limit`);
      total += bytes(service.mem_limit);
    }
    assert.ok(total <= STACK_MEMORY_BUDGET_BYTES, `limits add up to ${total / MIB} MiB`);
  });

  it('keeps each environment on its network', () => {
    const networksOf = (name: string) => Object.keys(compose.services[name]!.networks ?? {}).sort();
    assert.deepEqual(networksOf('backend_staging'), ['staging']);
    assert.deepEqual(networksOf('frontend_staging'), ['staging']);
    assert.deepEqual(networksOf('backend_prod'), ['prod']);
    assert.deepEqual(networksOf('frontend_prod'), ['prod']);
    assert.deepEqual(networksOf('edge'), ['prod', 'staging']);
    assert.deepEqual(networksOf('postgres'), ['prod', 'staging']);
  });

  it('gives each backend its own settings', () => {
    const staging = compose.services.backend_staging!.environment!;
    const prod = compose.services.backend_prod!.environment!;
    assert.equal(staging.ALLOWED_HOSTS, 'staging.jesuslab135.com');
    assert.equal(staging.DB_NAME, 'caliente_staging_db');
    assert.equal(prod.ALLOWED_HOSTS, 'app.jesuslab135.com');
    assert.equal(prod.DB_NAME, 'caliente_prod_db');
    assert.notEqual(staging.DB_USER, prod.DB_USER);
    for (const environment of [staging, prod]) {
      assert.equal(
        Object.keys(environment).some((key) => key.startsWith('EDGE_')),
        false,
      );
    }
  });

  it('keeps the single-quoted admin hash literal', () => {
    const hash = compose.services.edge!.environment!.EDGE_ADMIN_PASSWORD_HASH;
    assert.equal(hash, 'scrypt$$32768$$8$$1$$c2FsdA==$$aGFzaA==');
  });

  it('edge config matches the stack', () => {
    const config = loadConfigFile(path.join(dir, 'edge.yml'));
    const networkNames = Object.values(compose.networks).map((network) => network.name);
    const containers = new Map(
      Object.entries(compose.services).map(([name, service]) => [service.container_name, name]),
    );

    for (const site of config.sites) {
      assert.ok(networkNames.includes(site.network), `site ${site.name} names a Compose network`);
      for (const route of site.routes) {
        assert.ok(route.service, `${site.name} ${route.path} routes to a service`);
        const service = config.services[route.service]!;
        assert.equal(service.environment, site.name, `${route.service} belongs to ${site.name}`);
        const composeService = containers.get(service.container);
        assert.ok(composeService, `${service.container} is a Compose container`);
        const composeNetwork = Object.keys(compose.services[composeService]!.networks ?? {})[0]!;
        assert.equal(compose.networks[composeNetwork]!.name, site.network);
      }
    }
  });

  it('passes every deploy secret to the edge', () => {
    const config = loadConfigFile(path.join(dir, 'edge.yml'));
    const environment = compose.services.edge!.environment!;
    for (const [name, entry] of Object.entries(config.deploy.environments)) {
      assert.ok(environment[entry.secretEnv], `${name} secret ${entry.secretEnv} reaches the edge`);
    }
    assert.equal(environment[config.admin.passwordHashEnv] !== undefined, true);
  });

  it('mounts the docker socket into the edge only', () => {
    const withSocket = Object.entries(compose.services)
      .filter(([, service]) => JSON.stringify(service.volumes ?? []).includes('docker.sock'))
      .map(([name]) => name);
    assert.deepEqual(withSocket, ['edge']);
  });

  it('example env lists every required variable', () => {
    const file = readFileSync(path.join(COMPOSE_DIR, 'docker-compose.yml'), 'utf8');
    const example = readFileSync(path.join(COMPOSE_DIR, '.env.example'), 'utf8');
    const required = [...file.matchAll(/\$\{([A-Z_]+):\?/g)].map((match) => match[1]!);
    assert.ok(required.length > 0);
    for (const name of new Set(required)) {
      assert.match(example, new RegExp(`^${name}=`, 'm'), `.env.example has ${name}`);
    }
  });
});
