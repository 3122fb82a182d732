import { readFileSync } from 'node:fs';
import https from 'node:https';
import http from 'node:http';
import path from 'node:path';
import type { BenchOptions } from './options.ts';
import {
  hasWrk,
  runAutocannon,
  runHandshakes,
  runWebSocket,
  runWrk,
  type LoadRequest,
  type LoadResult,
} from './load-tools.ts';
import type { ProcessGroup } from './processes.ts';
import type { Target } from './targets.ts';

const SMALL_BODY = 'ok';
const LARGE_BODY_BYTES = 102_400;
/** Size of the JSON body of `post-tls`, a typical API request. */
const POST_BODY_BYTES = 1_024;
/** WebSocket clients: fewer than HTTP connections, because each runs a strict send/echo loop. */
const WS_CONNECTIONS = 32;
const PREFLIGHT_TIMEOUT_MS = 5_000;

export interface ScenarioContext {
  options: BenchOptions;
  group: ProcessGroup;
  caFile: string;
}

export interface Scenario {
  id: string;
  title: string;
  /** What `count` counts: requests, handshakes or messages. */
  unit: string;
  /** Server behind the proxy whose CPU is reported beside the proxy's. */
  upstream: 'origin' | 'ws-echo' | 'none';
  /** Returns the URL this scenario loads on `target`, or undefined when the target has no such listener. */
  url(target: Target): string | undefined;
  /** One request that must succeed with the expected body before any load is sent. */
  expect?: { status: number; bodyBytes: number; body?: string };
  run(context: ScenarioContext, url: string, durationS: number): Promise<LoadResult>;
}

function httpLoad(extra: Partial<LoadRequest> = {}) {
  const useWrk = hasWrk();
  return (context: ScenarioContext, url: string, durationS: number): Promise<LoadResult> => {
    const { connections, threads } = context.options;
    const request = { url, connections, threads, durationS, ...extra };
    return useWrk ? runWrk(context.group, request) : runAutocannon(context.group, request);
  };
}

export const SCENARIOS: Scenario[] = [
  {
    id: 'small',
    title: 'Small response ("ok"), HTTP keep-alive',
    unit: 'req',
    upstream: 'origin',
    url: (target) => target.httpUrl && `${target.httpUrl}/`,
    expect: { status: 200, bodyBytes: 2, body: SMALL_BODY },
    run: httpLoad(),
  },
  {
    id: '100k',
    title: '100 KB response, HTTP keep-alive',
    unit: 'req',
    upstream: 'origin',
    url: (target) => target.httpUrl && `${target.httpUrl}/100k.bin`,
    expect: { status: 200, bodyBytes: LARGE_BODY_BYTES },
    run: httpLoad(),
  },
  {
    id: 'small-tls',
    title: 'Small response, TLS keep-alive',
    unit: 'req',
    upstream: 'origin',
    url: (target) => target.httpsUrl && `${target.httpsUrl}/`,
    expect: { status: 200, bodyBytes: 2, body: SMALL_BODY },
    run: httpLoad(),
  },
  {
    id: 'post-tls',
    title: `POST of a ${POST_BODY_BYTES}-byte JSON body, small response, TLS keep-alive`,
    unit: 'req',
    upstream: 'origin',
    url: (target) => target.httpsUrl && `${target.httpsUrl}/`,
    expect: { status: 200, bodyBytes: 2, body: SMALL_BODY },
    run: httpLoad({ postBytes: POST_BODY_BYTES }),
  },
  {
    id: '100k-tls',
    title: '100 KB response, TLS keep-alive',
    unit: 'req',
    upstream: 'origin',
    url: (target) => target.httpsUrl && `${target.httpsUrl}/100k.bin`,
    expect: { status: 200, bodyBytes: LARGE_BODY_BYTES },
    run: httpLoad(),
  },
  {
    id: 'tls-close',
    title: 'Small response, new TLS connection per request (Connection: close)',
    unit: 'req',
    upstream: 'origin',
    url: (target) => target.httpsUrl && `${target.httpsUrl}/`,
    expect: { status: 200, bodyBytes: 2, body: SMALL_BODY },
    run: httpLoad({ connectionClose: true }),
  },
  {
    id: 'handshake',
    title: 'New TLS handshakes (openssl s_time -new, 4 clients, no request)',
    unit: 'handshake',
    upstream: 'none',
    url: (target) => target.httpsUrl,
    run: (context, url, durationS) =>
      runHandshakes(context.group, Number(new URL(url).port), durationS),
  },
  {
    id: 'ws',
    title: `WebSocket echo over TLS, ${WS_CONNECTIONS} clients, 32-byte messages`,
    unit: 'msg',
    upstream: 'ws-echo',
    url: (target) => target.httpsUrl && `${target.httpsUrl.replace('https:', 'wss:')}/ws`,
    run: (context, url, durationS) =>
      runWebSocket(context.group, url, WS_CONNECTIONS, durationS, context.caFile),
  },
];

/** Scenarios selected by BENCH_SCENARIOS (all by default). */
export function selectScenarios(options: BenchOptions): Scenario[] {
  if (options.scenarios.length === 0) return SCENARIOS;

  const unknown = options.scenarios.filter((id) => !SCENARIOS.some((s) => s.id === id));
  if (unknown.length > 0) {
    throw new Error(
      `unknown BENCH_SCENARIOS ${unknown.join(', ')}; known: ${SCENARIOS.map((s) => s.id).join(', ')}`,
    );
  }
  return SCENARIOS.filter((s) => options.scenarios.includes(s.id));
}

/**
 * Sends one request and returns undefined when the answer is the expected one, else the reason
 * this target must sit the scenario out (a redirect, a wrong body, a refused connection).
 */
export async function preflight(
  scenario: Scenario,
  url: string,
  caFile: string,
): Promise<string | undefined> {
  if (scenario.expect === undefined) return undefined;

  const { status, body } = await fetchOnce(url, readFileSync(path.resolve(caFile)));
  const expected = scenario.expect;
  if (status !== expected.status)
    return `GET ${new URL(url).pathname} answered ${status}, expected ${expected.status}`;
  if (body.length !== expected.bodyBytes)
    return `body has ${body.length} bytes, expected ${expected.bodyBytes}`;
  if (expected.body !== undefined && body.toString() !== expected.body)
    return `body is not "${expected.body}"`;
  return undefined;
}

function fetchOnce(url: string, ca: Buffer): Promise<{ status: number; body: Buffer }> {
  const client = url.startsWith('https:') ? https : http;
  return new Promise((resolve, reject) => {
    const request = client.get(
      url,
      { ca, timeout: PREFLIGHT_TIMEOUT_MS, agent: false },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks) }),
        );
        response.on('error', reject);
      },
    );
    request.on('timeout', () => request.destroy(new Error(`GET ${url} timed out`)));
    request.on('error', reject);
  });
}
