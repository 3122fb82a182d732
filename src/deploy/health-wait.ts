import http from 'node:http';
import net from 'node:net';
import type { ContainerInspect, DockerEngine } from '../docker/engine.ts';
import { containerAddress } from '../docker/service-container.ts';
import { EdgeError, errorMessage } from '../errors.ts';

export const HEALTH_USER_AGENT = 'caliente-edge-healthcheck';
/** Maximum time a single probe may take, whatever the overall timeout. */
export const MAX_PROBE_TIMEOUT_MS = 5_000;
/** Log lines shown when a container exits during the wait. */
const LOG_TAIL_LINES = 20;
const NO_PROBE_YET = 'no probe finished yet';

export interface HealthWaitOptions {
  engine: DockerEngine;
  containerId: string;
  /** Network whose address of the container the edge routes to; the first one when unset. */
  network?: string;
  port: number;
  /** HTTP path to probe; without it the image's HEALTHCHECK, else a TCP connect, decides. */
  path?: string;
  /** Host header of the probe. */
  host?: string;
  intervalMs: number;
  timeoutMs: number;
  /** Reports each change of the probe result. */
  onProgress?: (message: string) => void;
}

/**
 * Waits until a freshly started container is ready for traffic and returns its address. It fails
 * at once, with the exit code and last log line, when the container exits or restarts or its
 * Docker health check turns unhealthy. After `timeoutMs` it fails with the last probe result,
 * such as "health check returned HTTP 400".
 */
export async function waitUntilHealthy(
  options: HealthWaitOptions,
): Promise<{ address: string; message: string }> {
  const deadline = Date.now() + options.timeoutMs;
  const initial = await inspectOrFail(options);
  let lastResult = NO_PROBE_YET;

  for (;;) {
    const info = await inspectOrFail(options);
    await failIfNotRunning(options, info, initial.RestartCount);

    const address = containerAddress(info, options.network);
    const result: ProbeResult =
      address === undefined
        ? {
            healthy: false,
            message: `container has no address on network ${options.network ?? '(any)'}`,
          }
        : await probe(options, address, info, deadline);
    if (result.healthy) return { address: address!, message: result.message };
    // A probe cut short by the deadline carries less information than an earlier result such as
    // "HTTP 301", so it does not replace one.
    const keepEarlier = result.cutShort === true && lastResult !== NO_PROBE_YET;
    if (!keepEarlier) {
      if (result.message !== lastResult) options.onProgress?.(result.message);
      lastResult = result.message;
    }

    if (Date.now() + options.intervalMs > deadline) {
      throw new EdgeError(
        'EDGE_DEPLOY_UNHEALTHY',
        `not healthy within ${options.timeoutMs} ms: ${lastResult}`,
        {
          status: 502,
          context: { container: options.containerId },
        },
      );
    }
    await sleep(options.intervalMs);
  }
}

interface ProbeResult {
  healthy: boolean;
  message: string;
  /** The probe timed out after less than its full time because the overall deadline came. */
  cutShort?: boolean;
}

async function probe(
  options: HealthWaitOptions,
  address: string,
  info: ContainerInspect,
  deadline: number,
): Promise<ProbeResult> {
  const timeoutMs = Math.max(1, Math.min(MAX_PROBE_TIMEOUT_MS, deadline - Date.now()));
  const cutShort = timeoutMs < MAX_PROBE_TIMEOUT_MS;
  if (options.path !== undefined) return probeHttp(options, address, timeoutMs, cutShort);

  const health = info.State.Health;
  if (health !== undefined && health.Status !== 'none') {
    if (health.Status === 'healthy')
      return { healthy: true, message: 'Docker health check healthy' };
    if (health.Status === 'unhealthy') {
      const output = health.Log?.at(-1)?.Output?.trim() ?? '';
      throw new EdgeError(
        'EDGE_DEPLOY_UNHEALTHY',
        `Docker health check reported unhealthy: ${lastLine(output)}`,
        {
          status: 502,
        },
      );
    }
    return { healthy: false, message: `Docker health check ${health.Status}` };
  }
  return probeTcp(options, address, timeoutMs, cutShort);
}

function probeHttp(
  options: HealthWaitOptions,
  address: string,
  timeoutMs: number,
  cutShort: boolean,
): Promise<ProbeResult> {
  const headers: Record<string, string> = {
    'user-agent': HEALTH_USER_AGENT,
    // Apps behind a TLS proxy (Django's SECURE_SSL_REDIRECT) redirect plain requests otherwise.
    'x-forwarded-proto': 'https',
    connection: 'close',
  };
  if (options.host !== undefined) headers.host = options.host;

  return new Promise((resolve) => {
    const request = http.get(
      { host: address, port: options.port, path: options.path, headers, timeout: timeoutMs },
      (response) => {
        response.resume();
        const status = response.statusCode ?? 0;
        if (status >= 200 && status < 300) {
          resolve({ healthy: true, message: `health check returned HTTP ${status}` });
          return;
        }
        const location = response.headers.location
          ? ` redirect to ${response.headers.location}`
          : '';
        resolve({ healthy: false, message: `health check returned HTTP ${status}${location}` });
      },
    );
    let timedOut = false;
    request.on('timeout', () => {
      timedOut = true;
      request.destroy(new Error(`no response within ${timeoutMs} ms`));
    });
    request.on('error', (error) =>
      resolve({
        healthy: false,
        message: `health check failed: ${error.message}`,
        cutShort: cutShort && timedOut,
      }),
    );
  });
}

function probeTcp(
  options: HealthWaitOptions,
  address: string,
  timeoutMs: number,
  cutShort: boolean,
): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: address, port: options.port, timeout: timeoutMs });
    socket.on('connect', () => {
      socket.destroy();
      resolve({ healthy: true, message: `port ${options.port} accepts connections` });
    });
    let timedOut = false;
    socket.on('timeout', () => {
      timedOut = true;
      socket.destroy(new Error(`no response within ${timeoutMs} ms`));
    });
    socket.on('error', (error) =>
      resolve({
        healthy: false,
        message: `port ${options.port}: ${error.message}`,
        cutShort: cutShort && timedOut,
      }),
    );
  });
}

async function inspectOrFail(options: HealthWaitOptions): Promise<ContainerInspect> {
  const info = await options.engine.inspectContainer(options.containerId);
  if (info === undefined) {
    throw new EdgeError(
      'EDGE_DEPLOY_CONTAINER_GONE',
      `container ${options.containerId.slice(0, 12)} was removed`,
      {
        status: 502,
      },
    );
  }
  return info;
}

async function failIfNotRunning(
  options: HealthWaitOptions,
  info: ContainerInspect,
  restarts: number,
): Promise<void> {
  const state = info.State;
  const restarted = info.RestartCount > restarts;
  if (state.Running && !state.Restarting && !restarted) return;

  const logs = await options.engine
    .containerLogs(options.containerId, LOG_TAIL_LINES)
    .catch((error: unknown) => {
      return `(logs unavailable: ${errorMessage(error)})`;
    });
  const what =
    state.Restarting || restarted
      ? `is restarting (restart count ${info.RestartCount})`
      : state.Status;
  const line = lastLine(logs);
  throw new EdgeError(
    'EDGE_DEPLOY_CONTAINER_EXITED',
    `container ${what}, exit code ${state.ExitCode}${line ? `, last log line: ${line}` : ''}`,
    { status: 502, context: { container: options.containerId, exitCode: state.ExitCode } },
  );
}

/** Last non-empty line of a log text. */
export function lastLine(text: string): string {
  const lines = text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '');
  return lines.at(-1) ?? '';
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
