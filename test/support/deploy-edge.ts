/**
 * Helpers for end-to-end deploy tests: an edge configuration for one Docker service behind
 * https://localhost, its self-signed certificate on disk (for the CLI's --ca), and a bounded
 * request loop that counts failures while a deploy runs.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { EdgeConfigInput } from '../../src/config/schema.ts';
import { deployCommand } from '../../src/deploy/cli.ts';
import { createSelfSignedCertificate } from '../../src/tls/self-signed.ts';

export const EDGE_HOST = 'localhost';

export interface DeployEdgeFixture {
  dir: string;
  caFile: string;
  config: EdgeConfigInput;
}

/** Config for service `api` (container `container`, repository `repository`) on `network`. */
export async function deployEdgeFixture(options: {
  container: string;
  repository: string;
  network: string;
  secretEnv: string;
  socket: string;
  services?: Record<string, unknown>;
}): Promise<DeployEdgeFixture> {
  const dir = mkdtempSync(path.join(tmpdir(), 'edge-deploy-'));
  const pem = await createSelfSignedCertificate([EDGE_HOST]);
  const caFile = path.join(dir, 'cert.pem');
  writeFileSync(caFile, pem.cert);
  writeFileSync(path.join(dir, 'key.pem'), pem.key, { mode: 0o600 });

  const config: EdgeConfigInput = {
    listen: { address: '127.0.0.1', httpPort: 0, httpsPort: 0 },
    certsDir: path.join(dir, 'certs'),
    stateDir: path.join(dir, 'state'),
    log: { level: 'warn', access: false },
    tls: { certificates: [{ hosts: [EDGE_HOST], cert: caFile, key: path.join(dir, 'key.pem') }] },
    sites: [
      {
        name: 'prod',
        hosts: [EDGE_HOST],
        network: options.network,
        routes: [{ path: '/', service: 'api' }],
      },
    ],
    services: {
      api: {
        container: options.container,
        image: options.repository,
        port: 8080,
        environment: 'prod',
        health: { path: '/health', intervalMs: 100, timeoutMs: 15_000 },
        drainTimeoutMs: 5_000,
        websocketCloseGraceMs: 100,
        websocketCloseSpreadMs: 300,
        ...options.services,
      },
    },
    deploy: { environments: { prod: { secretEnv: options.secretEnv } } },
    docker: { socket: options.socket },
  };
  return { dir, caFile, config };
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `caliente-edge deploy` in-process against the edge on `port` for service `api`, and
 * returns its exit code and output. `onStdout` sees the output so far after every write.
 */
export async function runDeployCli(options: {
  port: number;
  image: string;
  caFile: string;
  secret: string;
  json?: boolean;
  onStdout?: (output: string) => void;
}): Promise<CliResult> {
  let stdout = '';
  const err: string[] = [];
  const code = await deployCommand(
    [
      '--url',
      `https://${EDGE_HOST}:${options.port}`,
      '--service',
      'api',
      '--image',
      options.image,
      '--ca',
      options.caFile,
      ...(options.json === true ? ['--json'] : []),
    ],
    {
      stdout: {
        write: (text: string) => {
          stdout += text;
          options.onStdout?.(stdout);
        },
      },
      stderr: { write: (text: string) => err.push(text) },
      env: { EDGE_DEPLOY_SECRET: options.secret },
    },
  );
  return { code, stdout, stderr: err.join('') };
}

export interface LoadResult {
  ok: number;
  failed: number;
  failures: string[];
  versions: string[];
}

/**
 * Sends requests through the edge from `workers` parallel loops, loop i on paths[i % n], until
 * stop() is called, at most `maxRequests` in total and never longer than `maxMs`.
 */
export function startLoad(
  port: number,
  options: { workers?: number; maxRequests?: number; maxMs?: number; paths?: string[] } = {},
): { stop(): Promise<LoadResult> } {
  const agent = new https.Agent({
    keepAlive: true,
    rejectUnauthorized: false,
    maxSockets: options.workers ?? 6,
  });
  const result: LoadResult = { ok: 0, failed: 0, failures: [], versions: [] };
  const deadline = Date.now() + (options.maxMs ?? 120_000);
  const maxRequests = options.maxRequests ?? 20_000;
  let stopped = false;

  // Slow requests keep some in flight at the moment of the switch, so the drain is exercised.
  const paths = options.paths ?? ['/', '/slow?ms=1500'];

  const worker = async (index: number): Promise<void> => {
    while (!stopped && Date.now() < deadline && result.ok + result.failed < maxRequests) {
      try {
        const { status, body } = await getOnce(port, paths[index % paths.length]!, agent);
        if (status !== 200) throw new Error(`HTTP ${status}: ${body.slice(0, 200)}`);
        const version = (JSON.parse(body) as { version: string }).version;
        if (result.versions.at(-1) !== version) result.versions.push(version);
        result.ok++;
      } catch (error) {
        result.failed++;
        result.failures.push((error as Error).message);
      }
    }
  };
  const workers = Array.from({ length: options.workers ?? 6 }, (_, index) => worker(index));

  return {
    async stop() {
      stopped = true;
      await Promise.all(workers);
      agent.destroy();
      return result;
    },
  };
}

/** One HTTPS GET through the edge with the site's Host. */
export function getOnce(
  port: number,
  requestPath: string,
  agent?: https.Agent,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = https.get(
      {
        host: '127.0.0.1',
        port,
        path: requestPath,
        servername: EDGE_HOST,
        headers: { host: EDGE_HOST },
        agent,
        rejectUnauthorized: false,
        timeout: 10_000,
      },
      (response) => {
        let body = '';
        response.on('data', (chunk: Buffer) => (body += chunk.toString()));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
        response.on('error', reject);
      },
    );
    request.on('timeout', () => request.destroy(new Error('timed out')));
    request.on('error', reject);
  });
}

/** Waits until the edge serves `version` on `/`. */
export async function waitForEdgeVersion(
  port: number,
  version: string,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const { status, body } = await getOnce(port, '/');
      last = `${status} ${body}`;
      if (status === 200 && (JSON.parse(body) as { version: string }).version === version) return;
    } catch (error) {
      last = (error as Error).message;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`the edge did not serve ${version} within ${timeoutMs} ms (last: ${last})`);
}
