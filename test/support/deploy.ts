/**
 * Test helpers for the deploy API: a configuration with a prod and a staging service, an HTTP
 * server that dispatches `/_edge/*` to the registered handlers the way the proxy does, and a
 * client that signs requests.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseConfig } from '../../src/config/load.ts';
import type { EdgeConfig, EdgeConfigInput } from '../../src/config/schema.ts';
import type { EdgeContext } from '../../src/context.ts';
import { createDeployService, type DeployServiceOptions } from '../../src/deploy/index.ts';
import type { EdgeDeployService } from '../../src/deploy/service.ts';
import { sign, signedContent } from '../../src/deploy/signature.ts';
import { EDGE_PREFIX, EdgeApi } from '../../src/edge-api.ts';
import { silentLogger, type Logger } from '../../src/log.ts';
import { TargetRegistry } from '../../src/targets/registry.ts';

export const PROD_SECRET_ENV = 'EDGE_TEST_DEPLOY_SECRET_PROD';
export const STAGING_SECRET_ENV = 'EDGE_TEST_DEPLOY_SECRET_STAGING';

/** Fresh random secrets per run: nothing secret is ever fixed in the repository. */
export function newSecret(): string {
  return randomBytes(24).toString('hex');
}

/** A config with service `web` (prod, site app.example.test) and `web-staging` (staging). */
export function deployTestConfig(options: {
  repository: string;
  port: number;
  stateDir?: string;
  services?: Record<string, Partial<NonNullable<EdgeConfigInput['services']>[string]>>;
  deploy?: Partial<NonNullable<EdgeConfigInput['deploy']>>;
  network?: string;
}): EdgeConfig {
  const base = {
    image: options.repository,
    port: options.port,
    health: { path: '/health', intervalMs: 20, timeoutMs: 1_500 },
  };
  const quick = { drainTimeoutMs: 200, websocketCloseGraceMs: 0, websocketCloseSpreadMs: 0 };
  return parseConfig({
    stateDir: options.stateDir ?? mkdtempSync(path.join(tmpdir(), 'edge-state-')),
    sites: [
      {
        name: 'prod',
        hosts: ['app.example.test'],
        ...(options.network ? { network: options.network } : {}),
        routes: [{ path: '/', service: 'web' }],
      },
      {
        name: 'staging',
        hosts: ['staging.example.test'],
        routes: [{ path: '/', service: 'web-staging' }],
      },
    ],
    services: {
      web: {
        container: 'svc-web',
        environment: 'prod',
        ...base,
        ...quick,
        ...options.services?.web,
      },
      'web-staging': {
        container: 'svc-web-staging',
        environment: 'staging',
        ...base,
        ...quick,
        ...options.services?.['web-staging'],
      },
    },
    deploy: {
      environments: {
        prod: { secretEnv: PROD_SECRET_ENV },
        staging: { secretEnv: STAGING_SECRET_ENV },
      },
      ...options.deploy,
    },
  });
}

export interface DeployApiServer {
  url: string;
  context: EdgeContext;
  deploys: EdgeDeployService | undefined;
  close(): Promise<void>;
}

/**
 * Builds the deploy service on a minimal context and serves its routes on 127.0.0.1. Requests
 * count as HTTPS unless they carry `x-test-insecure`; `x-test-client` sets the client address.
 */
export async function startDeployApi(
  config: EdgeConfig,
  options: DeployServiceOptions & { logger?: Logger } = {},
): Promise<DeployApiServer> {
  const context = {
    config,
    logger: options.logger ?? silentLogger,
    targets: new TargetRegistry(),
    api: new EdgeApi(),
    routeStats: [],
    startedAt: Date.now(),
  } as unknown as EdgeContext;
  const deploys = await createDeployService(context, options);

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://edge');
    const below = url.pathname.slice(EDGE_PREFIX.length) || '/';
    const match = context.api.match(req.method ?? 'GET', below);
    if ('status' in match) {
      res.writeHead(match.status).end();
      return;
    }
    void match.handler({
      req,
      res,
      site: config.sites[0]!,
      clientAddress: String(req.headers['x-test-client'] ?? req.socket.remoteAddress),
      path: below,
      query: url.searchParams,
      params: match.params,
      secure: req.headers['x-test-insecure'] === undefined,
      reqId: randomBytes(4).toString('hex'),
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    context,
    deploys,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface SignedRequestOptions {
  method?: 'GET' | 'POST';
  body?: unknown;
  secret?: string;
  /** Unix seconds; defaults to now. */
  timestamp?: number;
  headers?: Record<string, string>;
  /** Use this signature header value instead of computing one. */
  signature?: string;
}

/** Sends a signed request to the deploy API. */
export function signedRequest(
  baseUrl: string,
  target: string,
  options: SignedRequestOptions = {},
): Promise<Response> {
  const method = options.method ?? (options.body === undefined ? 'GET' : 'POST');
  const body =
    options.body === undefined
      ? ''
      : typeof options.body === 'string'
        ? options.body
        : JSON.stringify(options.body);
  const timestamp = String(options.timestamp ?? Math.floor(Date.now() / 1000));
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    ...options.headers,
  };
  if (options.secret !== undefined || options.signature !== undefined) {
    headers['x-edge-timestamp'] = timestamp;
    headers['x-edge-signature'] =
      options.signature ?? sign(options.secret!, timestamp, signedContent(method, target, body));
  }
  return fetch(`${baseUrl}${target}`, {
    method,
    headers,
    body: method === 'GET' ? undefined : body,
  });
}

/** Reads an NDJSON response to its end. */
export async function readLines(response: Response): Promise<Record<string, unknown>[]> {
  const text = await response.text();
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** A local HTTP server standing in for the service's container (fake engines use 127.0.0.1). */
export async function startHealthServer(
  handler: http.RequestListener = (req, res) => res.end('ok'),
): Promise<{ port: number; requests: http.IncomingHttpHeaders[]; close(): Promise<void> }> {
  const requests: http.IncomingHttpHeaders[] = [];
  const server = http.createServer((req, res) => {
    requests.push(req.headers);
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
