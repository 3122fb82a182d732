import { execFileSync } from 'node:child_process';
import path from 'node:path';
import type { ProcessGroup } from './processes.ts';

/** Extra time a load tool gets beyond its own duration before it is killed. */
const TOOL_GRACE_MS = 15_000;
/** Parallel blocking `openssl s_time` clients, enough to keep one proxy core busy. */
const HANDSHAKE_CLIENTS = 4;

/** What one load run measured. `count` is requests, handshakes or messages. */
export interface LoadResult {
  count: number;
  durationS: number;
  rate: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
}

export interface LoadRequest {
  url: string;
  connections: number;
  threads: number;
  durationS: number;
  /** Open a new connection for every request. */
  connectionClose?: boolean;
  /** Send each request as a POST with a JSON body of this many bytes. */
  postBytes?: number;
}

/** Returns a JSON document of exactly `bytes` bytes (at least 12), as an API client would POST. */
export function jsonBody(bytes: number): string {
  const frame = '{"data":""}';
  return `{"data":"${'x'.repeat(Math.max(0, bytes - frame.length))}"}`;
}

/** Returns true when wrk is installed; otherwise autocannon from node_modules is used. */
export function hasWrk(): boolean {
  try {
    execFileSync('wrk', ['-v'], { stdio: 'ignore' });
    return true;
  } catch (error) {
    // wrk -v prints its version and exits with status 1.
    return (error as { status?: number }).status === 1;
  }
}

/** HTTP load with wrk, summary read from bench/wrk/report.lua's JSON line. */
export async function runWrk(group: ProcessGroup, request: LoadRequest): Promise<LoadResult> {
  const args = [
    `-t${request.threads}`,
    `-c${request.connections}`,
    `-d${request.durationS}s`,
    '-s',
    path.resolve('bench/wrk/report.lua'),
    request.url,
  ];
  const env = {
    ...process.env,
    BENCH_CONNECTION_CLOSE: request.connectionClose ? '1' : '0',
    BENCH_POST_BODY: request.postBytes ? jsonBody(request.postBytes) : '',
  };
  const { stdout, stderr } = await group.run(
    'wrk',
    args,
    request.durationS * 1000 + TOOL_GRACE_MS,
    env,
  );
  const summary = jsonLine(stdout, stderr, 'wrk');

  const durationS = summary.durationUs / 1e6;
  const errors =
    summary.connectErrors +
    summary.readErrors +
    summary.writeErrors +
    summary.statusErrors +
    summary.timeouts;
  return {
    count: summary.requests,
    durationS,
    rate: summary.requests / durationS,
    p50Ms: summary.p50Us / 1000,
    p99Ms: summary.p99Us / 1000,
    errors,
  };
}

/** HTTP load with autocannon, for machines without wrk. */
export async function runAutocannon(
  group: ProcessGroup,
  request: LoadRequest,
): Promise<LoadResult> {
  const args = [
    '-c',
    String(request.connections),
    '-d',
    String(request.durationS),
    '-j',
    request.url,
  ];
  if (request.connectionClose) args.push('-H', 'Connection=close');
  if (request.postBytes) {
    args.push('-m', 'POST', '-H', 'Content-Type=application/json');
    args.push('-b', jsonBody(request.postBytes));
  }
  const bin = path.resolve('node_modules/.bin/autocannon');
  const { stdout } = await group.run(bin, args, request.durationS * 1000 + TOOL_GRACE_MS);
  const summary = JSON.parse(stdout);

  return {
    count: summary.requests.total,
    durationS: summary.duration,
    rate: summary.requests.total / summary.duration,
    p50Ms: summary.latency.p50,
    p99Ms: summary.latency.p99,
    errors: summary.errors + summary.timeouts + summary.non2xx,
  };
}

/**
 * New TLS handshakes per second: 4 parallel `openssl s_time -new` clients, no HTTP request.
 * s_time sends no SNI, so the server answers with its default certificate.
 */
export async function runHandshakes(
  group: ProcessGroup,
  port: number,
  durationS: number,
): Promise<LoadResult> {
  const args = ['s_time', '-connect', `127.0.0.1:${port}`, '-new', '-time', String(durationS)];
  const runs = Array.from({ length: HANDSHAKE_CLIENTS }, () =>
    group.run('openssl', args, durationS * 1000 + TOOL_GRACE_MS),
  );

  let count = 0;
  let errors = 0;
  for (const { stdout, code } of await Promise.all(runs)) {
    const match = /(\d+) connections in [\d.]+s;/.exec(stdout);
    if (match) count += Number(match[1]);
    if (!match || code !== 0) errors++;
  }
  return { count, durationS, rate: count / durationS, p50Ms: NaN, p99Ms: NaN, errors };
}

/** WebSocket echo round trips through `url` with bench/ws-client.ts. */
export async function runWebSocket(
  group: ProcessGroup,
  url: string,
  connections: number,
  durationS: number,
  caFile: string,
): Promise<LoadResult> {
  const args = [
    '--import',
    'tsx',
    path.resolve('bench/ws-client.ts'),
    url,
    String(connections),
    String(durationS),
    caFile,
  ];
  const { stdout, stderr } = await group.run(
    process.execPath,
    args,
    durationS * 1000 + TOOL_GRACE_MS,
  );
  const summary = jsonLine(stdout, stderr, 'ws-client');

  return {
    count: summary.messages,
    durationS: summary.durationS,
    rate: summary.rate,
    p50Ms: summary.p50Ms,
    p99Ms: summary.p99Ms,
    errors: summary.errors,
  };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function jsonLine(stdout: string, stderr: string, tool: string): any {
  const line = stdout.split('\n').find((text) => text.startsWith('BENCH_JSON '));
  if (line === undefined) {
    throw new Error(`${tool} printed no summary: ${(stderr || stdout).trim().slice(0, 500)}`);
  }
  return JSON.parse(line.slice('BENCH_JSON '.length));
}
