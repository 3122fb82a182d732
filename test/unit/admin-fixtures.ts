/** Shared builders for the admin and health tests: config, fake modules, a server and a client. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { request } from 'undici';
import { hashPassword } from '../../src/admin/password.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { EdgeConfig, EdgeConfigInput } from '../../src/config/schema.ts';
import type {
  DeployService,
  DockerRuntime,
  EdgeContext,
  HealthMonitor,
} from '../../src/context.ts';
import { EdgeApi } from '../../src/edge-api.ts';
import { RouteStats } from '../../src/stats.ts';
import type {
  CertificateStatus,
  ContainerStatus,
  DeployRecord,
  UpstreamStatus,
} from '../../src/status.ts';
import { TargetRegistry } from '../../src/targets/registry.ts';
import type { CertificateManager } from '../../src/tls/index.ts';

/** Admin password of this test run; never a fixed string. */
export const TEST_PASSWORD = `pw-${randomBytes(12).toString('base64url')}`;
/** Deploy secret of this test run, used to check that no secret is ever shown. */
export const TEST_DEPLOY_SECRET = `deploy-${randomBytes(16).toString('hex')}`;
export const TEST_REGISTRY_PASSWORD = `registry-${randomBytes(16).toString('hex')}`;

let cachedHash: Promise<string> | undefined;

/** Returns the scrypt hash of TEST_PASSWORD, computed once per process. */
export function testPasswordHash(): Promise<string> {
  cachedHash ??= hashPassword(TEST_PASSWORD);
  return cachedHash;
}

/** Returns the environment the admin reads: hash plus the secrets named by testConfig(). */
export async function testEnv(): Promise<NodeJS.ProcessEnv> {
  return {
    EDGE_ADMIN_PASSWORD_HASH: await testPasswordHash(),
    EDGE_TEST_DEPLOY_SECRET: TEST_DEPLOY_SECRET,
    EDGE_TEST_REGISTRY_PASSWORD: TEST_REGISTRY_PASSWORD,
  };
}

export function testConfig(overrides: Partial<EdgeConfigInput> = {}): EdgeConfig {
  return parseConfig({
    sites: [
      {
        name: 'prod',
        hosts: ['app.example.test'],
        routes: [
          { path: '/api/', service: 'web' },
          { path: '/', static: '/srv/frontend' },
        ],
      },
      {
        name: 'staging',
        hosts: ['staging.example.test'],
        routes: [{ path: '/', upstream: 'http://127.0.0.1:9' }],
      },
    ],
    services: {
      web: {
        container: 'web-prod',
        image: 'registry.example.test/web',
        port: 8000,
        environment: 'prod',
      },
    },
    deploy: { environments: { prod: { secretEnv: 'EDGE_TEST_DEPLOY_SECRET' } } },
    docker: {
      socket: '/nonexistent/docker.sock',
      registryAuth: [
        {
          registry: 'registry.example.test',
          username: 'ci',
          passwordEnv: 'EDGE_TEST_REGISTRY_PASSWORD',
        },
      ],
    },
    ...overrides,
  });
}

/**
 * Makes a work folder with a static frontend in `www`, and sets the environment a real edge's
 * admin reads (password hash, deploy secret) in this process.
 */
export async function prepareAdminEdgeDir(prefix: string): Promise<string> {
  const workDir = mkdtempSync(join(tmpdir(), prefix));
  mkdirSync(join(workDir, 'www'));
  writeFileSync(join(workDir, 'www', 'index.html'), '<h1>frontend</h1>');
  process.env.EDGE_ADMIN_PASSWORD_HASH = await testPasswordHash();
  process.env.EDGE_TEST_DEPLOY_SECRET = TEST_DEPLOY_SECRET;
  return workDir;
}

/**
 * Config for a real edge on loopback: prod serves `/api/` from `upstreamPort` and `/` from
 * the frontend in `workDir`, staging proxies to `stagingPort`; both probed every
 * `probeIntervalMs`.
 */
export function adminEdgeConfig(options: {
  workDir: string;
  upstreamPort: number;
  stagingPort: number;
  probeIntervalMs: number;
}): EdgeConfigInput {
  const healthCheck = { path: '/healthz', intervalMs: options.probeIntervalMs, timeoutMs: 500 };
  return {
    listen: { address: '127.0.0.1', httpPort: 0, httpsPort: 0 },
    certsDir: join(options.workDir, 'certs'),
    stateDir: join(options.workDir, 'state'),
    log: { level: 'debug', access: false },
    sites: [
      {
        name: 'prod',
        hosts: ['app.example.test'],
        healthCheck,
        routes: [
          { path: '/api/', upstream: `http://127.0.0.1:${options.upstreamPort}` },
          { path: '/', static: join(options.workDir, 'www') },
        ],
      },
      {
        name: 'staging',
        hosts: ['staging.example.test'],
        healthCheck,
        routes: [{ path: '/', upstream: `http://127.0.0.1:${options.stagingPort}` }],
      },
    ],
    deploy: { environments: { prod: { secretEnv: 'EDGE_TEST_DEPLOY_SECRET' } } },
  };
}

export class FakeCertificates implements CertificateManager {
  statuses: CertificateStatus[];
  readonly renewed: string[] = [];

  constructor(statuses: CertificateStatus[]) {
    this.statuses = statuses;
  }

  async start() {}
  async stop() {}
  sniCallback(): void {}
  defaultSecureContext(): never {
    throw new Error('not used');
  }
  challengeResponse() {
    return undefined;
  }
  status() {
    return this.statuses;
  }
  defaultCertificate(): never {
    throw new Error('not used');
  }
  async renewNow(name: string): Promise<CertificateStatus> {
    this.renewed.push(name);
    const status = this.statuses.find((entry) => entry.names.includes(name));
    if (status === undefined) throw new Error(`no certificate for ${name}`);
    return status;
  }
}

export class FakeDeploys implements DeployService {
  records: DeployRecord[];
  readonly previous = new Map<string, string>();
  readonly rolledBack: string[] = [];

  constructor(records: DeployRecord[]) {
    this.records = records;
  }

  history(service?: string) {
    return this.records.filter((record) => service === undefined || record.service === service);
  }
  previousDigest(service: string) {
    return this.previous.get(service);
  }
  async rollback(service: string): Promise<DeployRecord> {
    this.rolledBack.push(service);
    const record: DeployRecord = {
      id: `rb-${this.rolledBack.length}`,
      service,
      image: `registry.example.test/web@${this.previous.get(service)}`,
      rollback: true,
      state: 'succeeded',
      startedAt: new Date().toISOString(),
      finishedAt: new Date().toISOString(),
      durationMs: 1200,
      steps: [],
    };
    this.records.push(record);
    return record;
  }
  async stop() {}
}

export class FakeDocker implements DockerRuntime {
  constructor(readonly items: ContainerStatus[]) {}
  async containers() {
    return this.items;
  }
  async stop() {}
}

export class FakeHealth implements HealthMonitor {
  constructor(readonly items: UpstreamStatus[]) {}
  status() {
    return this.items;
  }
  async stop() {}
}

const DAY_MS = 24 * 60 * 60 * 1000;

/** Returns a deploy record that succeeded a minute ago. */
export function succeededDeploy(overrides: Partial<DeployRecord> = {}): DeployRecord {
  return {
    id: 'd-1',
    service: 'web',
    image: 'registry.example.test/web:v42',
    digest: 'sha256:4242424242424242424242424242424242424242424242424242424242424242',
    previousDigest: 'sha256:4141414141414141414141414141414141414141414141414141414141414141',
    commit: '0123456789abcdef0123456789abcdef01234567',
    state: 'succeeded',
    startedAt: new Date(Date.now() - 60_000).toISOString(),
    finishedAt: new Date(Date.now() - 48_000).toISOString(),
    durationMs: 12_000,
    steps: [{ name: 'pull', status: 'ok', durationMs: 5000 }],
    ...overrides,
  };
}

/** Returns a context with every optional module present, backed by fakes. */
export function fullContext(config: EdgeConfig = testConfig()): EdgeContext & {
  certificates: FakeCertificates;
  deploys: FakeDeploys;
  docker: FakeDocker;
} {
  const now = Date.now();
  const prodStats = new RouteStats('prod', '/api/');
  for (const status of [200, 200, 204, 404, 502]) prodStats.record(status, 12, 100);
  const deploys = new FakeDeploys([
    succeededDeploy(),
    succeededDeploy({
      id: 'd-2',
      state: 'failed',
      failedStep: 'health',
      error: 'container did not become healthy within 60 s',
      startedAt: new Date(now - 30_000).toISOString(),
    }),
  ]);
  deploys.previous.set(
    'web',
    'sha256:4141414141414141414141414141414141414141414141414141414141414141',
  );

  return {
    config,
    logger: pino({ level: 'silent' }),
    targets: new TargetRegistry(),
    api: new EdgeApi(),
    certificates: new FakeCertificates([
      {
        names: ['app.example.test'],
        state: 'valid',
        directory: 'https://127.0.0.1:14000/dir',
        issuer: 'Pebble Intermediate CA',
        notAfter: new Date(now + 45 * DAY_MS).toISOString(),
        nextAttemptAt: new Date(now + 15 * DAY_MS).toISOString(),
      },
      {
        names: ['staging.example.test'],
        state: 'failed',
        directory: 'https://127.0.0.1:14000/dir',
        notAfter: new Date(now + 3 * DAY_MS).toISOString(),
        lastError: {
          message: 'challenge invalid',
          type: 'urn:ietf:params:acme:error:unauthorized',
          at: new Date(now - DAY_MS).toISOString(),
        },
      },
    ]),
    routeStats: [prodStats, new RouteStats('prod', '/'), new RouteStats('staging', '/')],
    startedAt: now - 3_600_000,
    docker: new FakeDocker([
      {
        service: 'web',
        container: 'web-prod',
        id: 'abc123',
        image: 'registry.example.test/web:v42',
        digest: 'sha256:4242424242424242424242424242424242424242424242424242424242424242',
        state: 'running',
        startedAt: new Date(now - 50_000).toISOString(),
        restartCount: 0,
        address: '10.224.1.5',
      },
    ]),
    deploys,
    health: new FakeHealth([
      {
        site: 'prod',
        route: '/api/',
        target: 'http://10.224.1.5:8000',
        healthy: true,
        latencyMs: 3.2,
        since: new Date(now - 50_000).toISOString(),
      },
      {
        site: 'staging',
        route: '/',
        target: 'http://127.0.0.1:9',
        healthy: false,
        lastError: 'connect ECONNREFUSED 127.0.0.1:9',
        since: new Date(now - 120_000).toISOString(),
      },
    ]),
  };
}

/** Returns a context with only the modules that always exist. */
export function bareContext(config: EdgeConfig = testConfig()): EdgeContext {
  return {
    config,
    logger: pino({ level: 'silent' }),
    targets: new TargetRegistry(),
    api: new EdgeApi(),
    certificates: new FakeCertificates([]),
    routeStats: [],
    startedAt: Date.now(),
  };
}

/** Collects pino lines as parsed objects. */
export function captureLogs(level = 'debug'): {
  logger: pino.Logger;
  lines: Record<string, unknown>[];
} {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line !== '') lines.push(JSON.parse(line));
      done();
    },
  });
  return { logger: pino({ level }, stream), lines };
}

export interface ApiServer {
  origin: string;
  close(): Promise<void>;
}

/**
 * Serves `context.api` below `/_edge` on a plain loopback port, the way the proxy dispatches it,
 * for unit tests that do not need TLS. The client address is the socket peer.
 */
export async function startApiServer(context: EdgeContext): Promise<ApiServer> {
  let counter = 0;
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (!url.pathname.startsWith('/_edge')) return void res.writeHead(404).end();

    const path = url.pathname.slice('/_edge'.length);
    const match = context.api.match(req.method ?? 'GET', path);
    if ('status' in match) return void res.writeHead(match.status).end();
    await match.handler({
      req,
      res,
      site: context.config.sites[0]!,
      clientAddress: req.socket.remoteAddress ?? '',
      path,
      query: url.searchParams,
      params: match.params,
      secure: true,
      reqId: `test-${++counter}`,
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    origin: `http://127.0.0.1:${port}`,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

export interface ClientResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/** HTTP client that keeps the admin session cookie, like a browser would. */
export class AdminClient {
  readonly origin: string;
  cookie: string | undefined;
  private readonly options: {
    rejectUnauthorized?: boolean;
    dispatcher?: import('undici').Dispatcher;
  };

  constructor(origin: string, options: { dispatcher?: import('undici').Dispatcher } = {}) {
    this.origin = origin;
    this.options = options;
  }

  async get(path: string, headers: Record<string, string> = {}): Promise<ClientResponse> {
    return this.send('GET', path, undefined, headers);
  }

  async post(
    path: string,
    form: Record<string, string>,
    headers: Record<string, string> = {},
  ): Promise<ClientResponse> {
    return this.send('POST', path, new URLSearchParams(form).toString(), {
      'content-type': 'application/x-www-form-urlencoded',
      ...headers,
    });
  }

  /** Logs in and keeps the cookie; fails the test unless the login succeeded. */
  async login(password = TEST_PASSWORD): Promise<ClientResponse> {
    const response = await this.post('/_edge/login', { password });
    if (response.status !== 303 || this.cookie === undefined) {
      throw new Error(`login failed with ${response.status}: ${response.text.slice(0, 200)}`);
    }
    return response;
  }

  /** Returns the CSRF token from the admin page. */
  async csrfToken(): Promise<string> {
    const page = await this.get('/_edge/');
    const match = /name="csrf" value="([^"]+)"/.exec(page.text);
    if (match === null) throw new Error(`no CSRF token on the admin page (status ${page.status})`);
    return match[1]!;
  }

  private async send(
    method: string,
    path: string,
    body: string | undefined,
    headers: Record<string, string>,
  ): Promise<ClientResponse> {
    const allHeaders: Record<string, string> = { ...headers };
    if (this.cookie !== undefined && allHeaders.cookie === undefined)
      allHeaders.cookie = this.cookie;
    const response = await request(`${this.origin}${path}`, {
      method,
      headers: allHeaders,
      body,
      dispatcher: this.options.dispatcher,
    });
    const text = await response.body.text();
    const setCookie = response.headers['set-cookie'];
    for (const value of [setCookie ?? []].flat()) {
      const pair = value.split(';')[0]!;
      this.cookie = pair.endsWith('=') ? undefined : pair;
    }
    return { status: response.statusCode, headers: response.headers, text };
  }
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  types: Map<string, string>;
  samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_PAIR = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\["\\n])*)"(,|(?=\}))/;
const SUFFIXES: Record<string, string[]> = {
  histogram: ['_bucket', '_sum', '_count'],
  summary: ['', '_sum', '_count'],
};

/**
 * Parses the Prometheus text format 0.0.4 strictly: every line is a HELP, a TYPE or a sample
 * of a family declared by TYPE before it, with valid names, label syntax and float values.
 */
export function parseExposition(text: string): Exposition {
  assert.ok(text.endsWith('\n'), 'exposition ends with a newline');
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  for (const [index, line] of text.split('\n').entries()) {
    const where = `line ${index + 1}: ${line}`;
    if (line === '') continue;
    if (line.startsWith('# HELP ')) {
      assert.match(line.split(' ')[2]!, METRIC_NAME, where);
      continue;
    }
    if (line.startsWith('# TYPE ')) {
      const [, , name, type] = line.split(' ');
      assert.match(name!, METRIC_NAME, where);
      assert.ok(['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(type!), where);
      assert.ok(!types.has(name!), `${where}: family declared twice`);
      types.set(name!, type!);
      continue;
    }
    assert.ok(!line.startsWith('#'), `${where}: unknown comment`);
    const sample = parseSample(line, where);
    assert.ok(familyOf(sample.name, types) !== undefined, `${where}: no TYPE for ${sample.name}`);
    samples.push(sample);
  }
  return { types, samples };
}

function parseSample(line: string, where: string): Sample {
  const nameMatch = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
  assert.ok(nameMatch, `${where}: metric name`);
  let rest = line.slice(nameMatch[0].length);
  const labels: Record<string, string> = {};
  if (rest.startsWith('{')) {
    rest = rest.slice(1);
    while (!rest.startsWith('}')) {
      const pair = LABEL_PAIR.exec(rest);
      assert.ok(pair, `${where}: label syntax`);
      labels[pair[1]!] = pair[2]!.replace(/\\n/g, '\n').replace(/\\(["\\])/g, '$1');
      rest = rest.slice(pair[0].length);
    }
    rest = rest.slice(1);
  }
  assert.match(rest, /^ [^ ]+( -?\d+)?$/, `${where}: value`);
  // Prometheus reads values with Go's strconv.ParseFloat, which ignores case in NaN and Inf;
  // prom-client writes NaN as `Nan`.
  const text = rest.trim().split(' ')[0]!;
  const special: Record<string, number> = {
    nan: NaN,
    '+inf': Infinity,
    inf: Infinity,
    '-inf': -Infinity,
  };
  const value = special[text.toLowerCase()] ?? Number(text);
  assert.ok(text.toLowerCase() === 'nan' || !Number.isNaN(value), `${where}: value ${text}`);
  return { name: nameMatch[0], labels, value };
}

function familyOf(name: string, types: Map<string, string>): string | undefined {
  if (types.get(name) !== undefined && types.get(name) !== 'histogram') return name;
  for (const [family, type] of types) {
    for (const suffix of SUFFIXES[type] ?? []) if (name === `${family}${suffix}`) return family;
  }
  return undefined;
}

/** Returns the value of the first sample named `name` whose labels include `labels`. */
export function findSample(
  exposition: Exposition,
  name: string,
  labels: Record<string, string>,
): number | undefined {
  const match = exposition.samples.find(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  return match?.value;
}
