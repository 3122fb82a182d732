import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import Docker from 'dockerode';
import { compose, prepareStack, stackNetworks, type StackSecrets } from './stack-compose.ts';
import {
  httpGet,
  httpsFromContainer,
  httpsGet,
  nodeInContainer,
  tcpFromContainer,
  websocketEcho,
} from './stack-clients.ts';
import { buildAppImages, buildEdgeImage, buildPostgresImage, docker, sh } from './stack-images.ts';
import { createPebbleTls, startGatewayPebble, type GatewayPebble } from './stack-pebble.ts';

const STAGING = 'staging.jesuslab135.com';
const PROD = 'app.jesuslab135.com';
const EDGE_IMAGE = 'caliente-edge:e2e';
const POSTGRES_IMAGE = 'edge-test/postgres:e2e';
const CERTIFICATE_TIMEOUT_MS = 60_000;
const HEALTHY_TIMEOUT_MS = 30_000;
const MIB = 1024 * 1024;
/** mem_limit of each service in compose/docker-compose.yml. */
const MEMORY_LIMITS: Record<string, number> = {
  'caliente-edge': 192 * MIB,
  'caliente-postgres': 384 * MIB,
  'caliente-backend-staging': 320 * MIB,
  'caliente-backend-prod': 320 * MIB,
  'caliente-frontend-staging': 64 * MIB,
  'caliente-frontend-prod': 64 * MIB,
};

const socket = process.env.EDGE_TEST_DOCKER_SOCKET ?? '';
const registry = process.env.EDGE_TEST_REGISTRY ?? '';
const engine = new Docker({ socketPath: socket });
const networks = stackNetworks();
const secrets: StackSecrets = {
  deployStaging: randomBytes(24).toString('hex'),
  deployProd: randomBytes(24).toString('hex'),
  adminPassword: randomBytes(12).toString('hex'),
};

async function until<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline)
      throw new Error(`${what} did not happen within ${timeoutMs} ms: ${String(last)}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

async function publishedPort(container: string, port: number): Promise<number> {
  const info = await engine.getContainer(container).inspect();
  const binding = info.NetworkSettings.Ports[`${port}/tcp`]?.[0]?.HostPort;
  assert.ok(binding, `${container} publishes ${port}`);
  return Number(binding);
}

async function containerAddress(container: string, network: string): Promise<string> {
  const info = await engine.getContainer(container).inspect();
  const address = info.NetworkSettings.Networks[network]?.IPAddress;
  assert.ok(address, `${container} has an address on ${network}`);
  return address;
}

/** Memory in use as `docker stats` reports it: usage less the inactive page cache. */
async function memoryOf(container: string): Promise<{ usedBytes: number; limitBytes: number }> {
  const stats = await engine.getContainer(container).stats({ stream: false });
  const memory = stats.memory_stats as {
    usage: number;
    limit: number;
    stats: Record<string, number>;
  };
  const inactive = memory.stats.total_inactive_file ?? memory.stats.inactive_file ?? 0;
  return { usedBytes: memory.usage - inactive, limitBytes: memory.limit };
}

/** The parts of the `/_edge/status` document the test reads. */
interface StatusBody {
  edge: { memory: { mallocTrim: boolean } };
  certificates: { names: string[]; state: string }[];
  upstreams: { items: { site: string; route: string; healthy: boolean | null }[] };
}

describe('production stack on a private Docker engine', () => {
  let work: string;
  let stackDir: string;
  let pebble: GatewayPebble | undefined;
  let root = '';
  let rootFile = '';
  let httpsPort = 0;
  let httpPort = 0;
  const isolationRules: string[][] = [];
  let imagePrefix = '';
  let backendV2 = '';

  before(async () => {
    assert.ok(socket, 'EDGE_TEST_DOCKER_SOCKET is set by scripts/test.sh');
    assert.ok(registry, 'EDGE_TEST_REGISTRY is set by scripts/test.sh');
    work = mkdtempSync(path.join(tmpdir(), 'ce-e2e-'));
    stackDir = path.join(work, 'stack');

    await buildEdgeImage(work, EDGE_IMAGE);
    await buildPostgresImage(work, POSTGRES_IMAGE);
    const apps = await buildAppImages(work, registry);
    imagePrefix = apps.prefix;
    backendV2 = apps.backendV2;

    const acmeDir = path.join(work, 'acme');
    mkdirSync(acmeDir);
    // Pebble must listen on the staging gateway before the edge starts, and the gateway exists
    // once Compose has created the networks: create everything, start Pebble, then start.
    const tls = await createPebbleTls(acmeDir, networks.staging.gateway);
    await prepareStack({
      dir: stackDir,
      edgeImage: EDGE_IMAGE,
      postgresImage: POSTGRES_IMAGE,
      imagePrefix,
      networks,
      acmeDirectory: `https://${networks.staging.gateway}:0/dir`,
      pebbleCaPath: tls.ca,
      socket,
      secrets,
    });
    await compose(stackDir, 'up', '--no-start');
    pebble = await startGatewayPebble(acmeDir, networks.staging.gateway, tls);
    await setAcmeDirectory(stackDir, pebble.directoryUrl);
    await pebble.setAddress(STAGING, networks.edgeAddress);
    await pebble.setAddress(PROD, networks.edgeAddress);
    await compose(stackDir, 'up', '-d');

    root = await pebble.rootCertificate();
    rootFile = path.join(work, 'pebble-root.pem');
    writeFileSync(rootFile, root);
    httpsPort = await publishedPort('caliente-edge', 443);
    httpPort = await publishedPort('caliente-edge', 80);
  });

  after(async () => {
    for (const rule of isolationRules) spawnSync('iptables', ['-D', ...rule]);
    if (stackDir) await compose(stackDir, 'down', '-v', '--timeout', '5').catch(() => {});
    await pebble?.stop();
    // Retries cover files a stopping container or Pebble may still be writing (ENOTEMPTY).
    if (work) rmSync(work, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
  });

  it('obtains certificates for both hosts', async () => {
    for (const host of [STAGING, PROD]) {
      const reply = await until(`a trusted certificate for ${host}`, CERTIFICATE_TIMEOUT_MS, () =>
        httpsGet(host, httpsPort, '/', root),
      );
      assert.equal(reply.status, 200);
      assert.ok(
        reply.certificate?.subjectaltname?.includes(`DNS:${host}`),
        `certificate names ${host}`,
      );
      assert.match(String(reply.certificate?.issuer?.CN), /Pebble Intermediate/);
    }
  });

  it('runs the edge as non-root with the socket group', async () => {
    const info = await engine.getContainer('caliente-edge').inspect();
    assert.equal(info.Config.User, '1000:1000');
    assert.deepEqual(info.HostConfig.GroupAdd, [String(readSocketGid())]);
    assert.equal(info.HostConfig.ReadonlyRootfs, true);
    const identity = JSON.parse(
      await nodeInContainer(
        'caliente-edge',
        'console.log(JSON.stringify([process.getuid(), process.getgroups()]))',
      ),
    ) as [number, number[]];
    assert.equal(identity[0], 1000);
    assert.ok(identity[1].includes(readSocketGid()), 'the edge process has the socket group');
  });

  it('ships production dependencies only', async (t) => {
    const script = `const fs = require('fs');
      console.log(JSON.stringify(['dist/main.js', 'demo/index.html', 'node_modules/dockerode', 'node_modules/typescript',
        'node_modules/tsx', 'node_modules/eslint', 'src', 'test'].map((p) => fs.existsSync('/app/' + p))))`;
    const present = JSON.parse(
      await docker('run', '--rm', '--entrypoint', 'node', EDGE_IMAGE, '-e', script),
    );
    assert.deepEqual(present, [true, true, true, false, false, false, false, false]);

    const image = await engine.getImage(EDGE_IMAGE).inspect();
    const base = await engine.getImage('edge-test/node-base:20').inspect();
    t.diagnostic(
      `edge image ${round(image.Size / MIB)} MiB: base ${round(base.Size / MIB)} MiB + app ${round((image.Size - base.Size) / MIB)} MiB`,
    );
  });

  it('reports the edge container healthy', async () => {
    const status = await until('edge health check', HEALTHY_TIMEOUT_MS, async () => {
      const info = await engine.getContainer('caliente-edge').inspect();
      return info.State.Health?.Status === 'healthy' ? 'healthy' : undefined;
    });
    assert.equal(status, 'healthy');
  });

  it('serves each frontend on its host', async () => {
    const staging = await httpsGet(STAGING, httpsPort, '/', root);
    assert.match(staging.body, /data-site="staging"/);
    const prod = await httpsGet(PROD, httpsPort, '/orders/42', root);
    assert.equal(prod.status, 200);
    assert.match(prod.body, /data-site="prod"/);
  });

  it('routes /api/ to each backend', async () => {
    for (const [host, database] of [
      [STAGING, 'caliente_staging_db'],
      [PROD, 'caliente_prod_db'],
    ]) {
      const reply = await httpsGet(host!, httpsPort, '/api/orders/?page=2', root);
      assert.equal(reply.status, 200, reply.body);
      const body = JSON.parse(reply.body);
      assert.equal(body.database, database);
      assert.equal(body.path, '/api/orders/?page=2');
      assert.equal(body.forwardedProto, 'https');
      assert.match(body.host, new RegExp(`^${host!.replace(/\./g, '\\.')}`));
    }
  });

  it('connects each backend to postgres', async () => {
    for (const host of [STAGING, PROD]) {
      const reply = await httpsGet(host, httpsPort, '/api/db/', root);
      assert.equal(JSON.parse(reply.body).reachable, true, `${host} backend reaches postgres`);
    }
  });

  it('redirects plain HTTP to HTTPS', async () => {
    const reply = await httpGet(PROD, httpPort, '/api/x?y=1');
    assert.equal(reply.status, 308);
    assert.equal(reply.headers.location, `https://${PROD}/api/x?y=1`);
  });

  it('proxies a WebSocket over wss', async () => {
    const { hello, echo } = await websocketEcho(
      `wss://${PROD}:${httpsPort}/api/ws/echo`,
      root,
      'hola',
    );
    assert.equal(JSON.parse(hello).database, 'caliente_prod_db');
    assert.equal(echo, 'hola');
  });

  it('shows certificates and upstreams on the status page', async () => {
    // Monitors may use Basic authentication with the admin password instead of a session.
    const credentials = Buffer.from(`monitor:${secrets.adminPassword}`).toString('base64');
    const authorization = `Basic ${credentials}`;
    const status = await until('every upstream healthy', HEALTHY_TIMEOUT_MS, async () => {
      const reply = await httpsGet(PROD, httpsPort, '/_edge/status', root, { authorization });
      assert.equal(reply.status, 200, reply.body);
      const body = JSON.parse(reply.body) as StatusBody;
      return body.upstreams.items.every((item) => item.healthy === true) ? body : undefined;
    });

    for (const host of [STAGING, PROD]) {
      const certificate = status.certificates.find((c) => c.names.includes(host));
      assert.equal(certificate?.state, 'valid', `${host} certificate is valid`);
    }
    const sites = new Set(status.upstreams.items.map((item) => item.site));
    assert.deepEqual([...sites].sort(), ['prod', 'staging']);
    assert.equal(status.edge.memory.mallocTrim, true, 'the image carries the malloc_trim addon');
  });

  it('keeps staging containers off the prod network', async () => {
    const info = await engine.getContainer('caliente-backend-staging').inspect();
    assert.deepEqual(Object.keys(info.NetworkSettings.Networks), ['caliente_staging']);
    const frontend = await engine.getContainer('caliente-frontend-staging').inspect();
    assert.deepEqual(Object.keys(frontend.NetworkSettings.Networks), ['caliente_staging']);
  });

  it('staging container cannot reach prod backend', async () => {
    // Docker with iptables on (as on the VPS) drops forwarding between two bridge networks.
    // The test daemon runs with --iptables=false, so the test adds the same two rules.
    for (const [from, to] of [
      [networks.staging.bridge, networks.prod.bridge],
      [networks.prod.bridge, networks.staging.bridge],
    ]) {
      const rule = ['FORWARD', '-i', from!, '-o', to!, '-j', 'DROP'];
      const added = spawnSync('iptables', ['-I', ...rule.slice(0, 1), '1', ...rule.slice(1)], {
        encoding: 'utf8',
      });
      assert.equal(added.status, 0, `iptables: ${added.stderr}`);
      isolationRules.push(rule);
    }
    const prodBackend = await containerAddress('caliente-backend-prod', 'caliente_prod');
    const result = await nodeInContainer(
      'caliente-backend-staging',
      tcpFromContainer(prodBackend, 8000),
    );
    assert.notEqual(result, 'connected');
    const prodEdge = await containerAddress('caliente-edge', 'caliente_prod');
    const edgeResult = await nodeInContainer(
      'caliente-backend-staging',
      tcpFromContainer(prodEdge, 443),
    );
    assert.notEqual(edgeResult, 'connected');
  });

  it('edge refuses staging asking for prod', async () => {
    const refused = await nodeInContainer(
      'caliente-backend-staging',
      httpsFromContainer(networks.edgeAddress, PROD, '/api/x'),
    );
    assert.equal(refused, '403');
    const own = await nodeInContainer(
      'caliente-backend-staging',
      httpsFromContainer(networks.edgeAddress, STAGING, '/api/x'),
    );
    assert.equal(own, '200');
  });

  it('edge ignores forwarded headers from staging', async () => {
    // The guard reads the TCP peer address: a container cannot pose as an internet client.
    const spoofed = { 'x-forwarded-for': '203.0.113.9', 'x-real-ip': '203.0.113.9' };
    const script = httpsFromContainer(networks.edgeAddress, PROD, '/api/x', 'GET', spoofed);
    assert.equal(await nodeInContainer('caliente-backend-staging', script), '403');
  });

  it('edge refuses prod deploys from staging', async () => {
    const script = httpsFromContainer(networks.edgeAddress, PROD, '/_edge/deploy', 'POST');
    assert.equal(await nodeInContainer('caliente-backend-staging', script), '403');
  });

  it('staging role cannot open prod database', async () => {
    const denied = spawnSync(
      'docker',
      [
        'exec',
        'caliente-postgres',
        'psql',
        '-U',
        'caliente_staging',
        '-d',
        'caliente_prod_db',
        '-c',
        'SELECT 1',
      ],
      { encoding: 'utf8' },
    );
    assert.notEqual(denied.status, 0);
    assert.match(denied.stderr, /permission denied for database "?caliente_prod_db"?/);
  });

  it('backs up and restores through docker exec', async () => {
    const psql = (sql: string) =>
      docker(
        'exec',
        'caliente-postgres',
        'psql',
        '-U',
        'caliente_prod',
        '-d',
        'caliente_prod_db',
        '-tAc',
        sql,
      );
    await psql(
      "CREATE TABLE orders (id int PRIMARY KEY, item text); INSERT INTO orders VALUES (1, 'elote')",
    );
    const backups = path.join(work, 'backups');

    // The production defaults: pg_dump and pg_restore run with docker exec in caliente-postgres.
    await sh('bash', ['scripts/backup.sh', '--dir', backups]);
    const folder = path.join(backups, 'caliente_prod_db');
    const dump = readdirSync(folder).find((file) => file.endsWith('.dump'));
    assert.ok(dump, 'a dump of caliente_prod_db exists');
    assert.equal(readdirSync(path.join(backups, 'caliente_staging_db')).length, 1);

    await psql('DELETE FROM orders');
    await sh('bash', [
      'scripts/restore.sh',
      '--yes',
      '--dir',
      backups,
      'caliente_prod_db',
      path.join(folder, dump),
    ]);
    assert.equal((await psql('SELECT item FROM orders')).trim(), 'elote');
  });

  it('deploys a new backend with the CLI', async () => {
    const result = runDeployCli(secrets.deployProd);
    assert.equal(result.status, 0, `${result.stdout}\n${result.stderr}`);
    assert.match(result.stdout, /succeeded/);

    const reply = await httpsGet(PROD, httpsPort, '/api/x', root);
    assert.equal(JSON.parse(reply.body).version, 'v2');
    const info = await engine.getContainer('caliente-backend-prod').inspect();
    assert.equal(info.Config.Image, backendV2);
    assert.equal(info.Config.Labels['com.docker.compose.service'], 'backend_prod');
    const composeId = (await compose(stackDir, 'ps', '-q', 'backend_prod')).trim();
    assert.equal(composeId, info.Id);
  });

  it('staging secret cannot deploy prod', async () => {
    const result = runDeployCli(secrets.deployStaging);
    assert.notEqual(result.status, 0);
    const info = await engine.getContainer('caliente-backend-prod').inspect();
    assert.equal(info.Config.Image, backendV2);
  });

  it('fits the stack in the memory budget', async (t) => {
    const report: Record<string, { usedMiB: number; limitMiB: number }> = {};
    for (const [container, limit] of Object.entries(MEMORY_LIMITS)) {
      const { usedBytes, limitBytes } = await memoryOf(container);
      assert.equal(limitBytes, limit, `${container} runs with its Compose mem_limit`);
      assert.ok(usedBytes > 0, `${container} reports memory use`);
      assert.ok(usedBytes < limitBytes, `${container} stays below its limit`);
      report[container] = { usedMiB: round(usedBytes / MIB), limitMiB: limitBytes / MIB };
      t.diagnostic(`${container}: ${round(usedBytes / MIB)} MiB of ${limitBytes / MIB} MiB`);
    }
    mkdirSync('test-artifacts', { recursive: true });
    writeFileSync('test-artifacts/e2e-stack-memory.json', `${JSON.stringify(report, null, 2)}\n`);
  });

  it('stops the edge cleanly on SIGTERM', async () => {
    await engine.getContainer('caliente-edge').stop({ t: 10 });
    const info = await engine.getContainer('caliente-edge').inspect();
    assert.equal(info.State.ExitCode, 0, 'exit code 0, not 137 from a SIGKILL after the timeout');
  });

  function runDeployCli(secret: string) {
    // The CLI built for the image, run on the host as CI runs it; only DNS is pointed at the
    // published port.
    return spawnSync(
      process.execPath,
      [
        '--import',
        path.resolve('test/e2e/resolve-hosts.mjs'),
        path.join(work, 'edge-context/bin/caliente-edge.js'),
        'deploy',
        '--url',
        `https://${PROD}:${httpsPort}`,
        '--service',
        'backend_prod',
        '--image',
        backendV2,
        '--ca',
        rootFile,
      ],
      {
        encoding: 'utf8',
        timeout: 120_000,
        env: { ...process.env, EDGE_DEPLOY_SECRET: secret, E2E_RESOLVE_LOOPBACK: PROD },
      },
    );
  }
});

function readSocketGid(): number {
  return statSync(socket).gid;
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}

/** Points edge.yml at Pebble once its port is known (the edge has not started yet). */
async function setAcmeDirectory(dir: string, url: string): Promise<void> {
  const file = path.join(dir, 'edge.yml');
  const text = await readFile(file, 'utf8');
  await writeFile(file, text.replace(/directory: https:\/\/\S+\/dir/, `directory: ${url}`));
}
