import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { hashPassword } from '../../src/admin/password.ts';
import type { EdgeConfigInput } from '../../src/config/schema.ts';
import { createSelfSignedCertificate } from '../../src/tls/self-signed.ts';

/**
 * Packages that cost several MB each and that only ACME, Docker, a metrics scrape, uploads and
 * https:// upstreams, or the demo need.
 */
const OPTIONAL_PACKAGES = [
  '@peculiar/x509',
  'acme-client',
  'dockerode',
  'prom-client',
  'undici',
  'ws',
];
const CHILD = path.resolve('test/support/startup-packages.ts');
const CHILD_TIMEOUT_MS = 30_000;

interface ChildResult {
  /** Packages resolved up to the end of each phase, in order: `started`, then `scraped`. */
  phases: Map<string, Set<string>>;
  scrapeStatus: string | undefined;
  stderr: string;
}

async function baseConfig(dir: string): Promise<EdgeConfigInput> {
  const pem = await createSelfSignedCertificate(['localhost']);
  writeFileSync(path.join(dir, 'cert.pem'), pem.cert);
  writeFileSync(path.join(dir, 'key.pem'), pem.key, { mode: 0o600 });
  return {
    listen: { address: '127.0.0.1', httpPort: 0, httpsPort: 0 },
    certsDir: path.join(dir, 'certs'),
    stateDir: path.join(dir, 'state'),
    log: { level: 'silent', access: false },
    tls: {
      certificates: [
        { hosts: ['localhost'], cert: path.join(dir, 'cert.pem'), key: path.join(dir, 'key.pem') },
      ],
    },
    sites: [{ name: 'prod', hosts: ['localhost'], routes: [{ path: '/', static: dir }] }],
    // A socket path in the test's own folder: nothing listens there.
    docker: { socket: path.join(dir, 'docker.sock') },
  };
}

async function runChild(dir: string, config: EdgeConfigInput): Promise<ChildResult> {
  const configFile = path.join(dir, 'edge.json');
  writeFileSync(configFile, JSON.stringify(config));
  const password = randomBytes(12).toString('base64url');
  const env = {
    ...process.env,
    EDGE_ADMIN_PASSWORD_HASH: await hashPassword(password),
    EDGE_TEST_ADMIN_PASSWORD: password,
    EDGE_TEST_DEPLOY_SECRET: randomBytes(16).toString('hex'),
  };

  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, configFile], {
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
    timeout: CHILD_TIMEOUT_MS,
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  const code = await new Promise((resolve) => child.on('close', resolve));
  assert.equal(code, 0, `child failed:\n${stderr}`);

  return { ...parsePhases(stderr), stderr };
}

function parsePhases(stderr: string): Omit<ChildResult, 'stderr'> {
  const phases = new Map<string, Set<string>>();
  const loaded = new Set<string>();
  let scrapeStatus: string | undefined;
  for (const line of stderr.split('\n')) {
    const [kind, name, detail] = line.split(' ');
    if (kind === 'package' && name !== undefined) loaded.add(packageName(name));
    if (kind === 'phase' && name !== undefined) phases.set(name, new Set(loaded));
    if (kind === 'phase' && name === 'scraped') scrapeStatus = detail;
  }
  return { phases, scrapeStatus };
}

/** `@scope/name/sub/path` and `name/sub/path` become the package name. */
function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

function optionalIn(packages: Set<string> | undefined): string[] {
  return OPTIONAL_PACKAGES.filter((name) => packages?.has(name));
}

describe('start-up packages', () => {
  it('loads no ACME, Docker, metrics, undici or demo package for static sites', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'edge-startup-'));
    const result = await runChild(dir, await baseConfig(dir));

    assert.ok(result.phases.get('started')?.has('pino'), 'the resolve hook saw no package');
    assert.deepEqual(optionalIn(result.phases.get('started')), []);
  });

  it('loads serve-static only for static routes', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'edge-startup-'));
    const staticSite = await runChild(dir, await baseConfig(dir));
    const proxyConfig = await baseConfig(dir);
    proxyConfig.sites = [
      // Port 1 on loopback: nothing listens there, and no request is sent.
      {
        name: 'prod',
        hosts: ['localhost'],
        routes: [{ path: '/', upstream: 'http://127.0.0.1:1' }],
      },
    ];
    const proxySite = await runChild(dir, proxyConfig);

    assert.equal(staticSite.phases.get('started')?.has('serve-static'), true, staticSite.stderr);
    assert.ok(proxySite.phases.get('started')?.has('pino'), 'the package report is empty');
    assert.equal(proxySite.phases.get('started')?.has('serve-static'), false);
  });

  it('creates the metrics registry on the first scrape', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'edge-startup-'));
    const result = await runChild(dir, await baseConfig(dir));

    assert.equal(result.scrapeStatus, '200');
    assert.equal(result.phases.get('started')?.has('prom-client'), false);
    assert.equal(result.phases.get('scraped')?.has('prom-client'), true);
  });

  it('loads acme-client and dockerode when ACME and services are configured', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'edge-startup-'));
    const config = await baseConfig(dir);
    config.tls = {
      // Port 1 on loopback: orders fail at once and wait for their retry, which the stop ends.
      acme: {
        email: 'ops@example.test',
        directory: 'https://127.0.0.1:1/directory',
        termsOfServiceAgreed: true,
      },
    };
    config.sites = [
      { name: 'prod', hosts: ['localhost'], routes: [{ path: '/', service: 'api' }] },
    ];
    config.services = {
      api: { container: 'api', image: 'edge-test/api', port: 8080, environment: 'prod' },
    };
    config.deploy = { environments: { prod: { secretEnv: 'EDGE_TEST_DEPLOY_SECRET' } } };
    const result = await runChild(dir, config);

    const started = result.phases.get('started');
    assert.equal(started?.has('acme-client'), true, result.stderr);
    assert.equal(started?.has('dockerode'), true, result.stderr);
  });
});
