import { AsyncLocalStorage } from 'node:async_hooks';
import type { Agent } from 'node:https';
import { createRequire } from 'node:module';
import acme from 'acme-client';
import type { Logger } from '../log.ts';
import {
  AcmeNetworkError,
  AcmeProblemError,
  parseRetryAfter,
  PROBLEM_RATE_LIMITED,
  type AcmeProblem,
} from './acme-problem.ts';

/** Per-issuer settings for the ACME requests made inside `runInAcmeScope`. */
export interface AcmeRequestScope {
  logger: Logger;
  /** Agent that trusts the directory's CA bundle; the default agent trusts the system store. */
  httpsAgent?: Agent;
  /** Last problem the server reported in this scope, kept for the error raised afterwards. */
  lastProblem?: AcmeProblem & { url?: string };
}

interface AxiosLikeConfig {
  url?: string;
  httpsAgent?: Agent;
}

interface AxiosLikeResponse {
  status: number;
  data: unknown;
  headers: Record<string, unknown>;
}

type HttpAdapter = (config: AxiosLikeConfig) => Promise<unknown>;

const scopes = new AsyncLocalStorage<AcmeRequestScope>();
let processLogger: Logger | undefined;

/**
 * Runs `task` with `scope` applied to every acme-client request it makes. acme-client shares
 * one axios instance per process, so per-directory trust and logging travel with the async
 * context instead of process-wide defaults.
 */
export function runInAcmeScope<T>(scope: AcmeRequestScope, task: () => Promise<T>): Promise<T> {
  installAcmeHttp(scope.logger);
  return scopes.run(scope, task);
}

/** Problem recorded in the current scope since `runInAcmeScope` started, if any. */
export function currentProblem(): (AcmeProblem & { url?: string }) | undefined {
  return scopes.getStore()?.lastProblem;
}

/** Sends a GET through acme-client's axios instance, so it gets the same trust and logging. */
export async function getJson(
  url: string,
): Promise<{ data: unknown; headers: Record<string, unknown> }> {
  const response = await acme.axios.get(url, { validateStatus: (status) => status === 200 });
  return { data: response.data, headers: response.headers as Record<string, unknown> };
}

/**
 * Installs, once per process, acme-client's logger and a wrapper around axios' HTTP adapter.
 * The wrapper raises two cases as errors that bypass acme-client's retry interceptor, which
 * would otherwise sleep inside the request. A 429 rate limit would wait out Retry-After, up to
 * hours, while holding the order. A failure without a response, such as an untrusted CA, would
 * be retried for about 75 s and then reported as an unrelated TypeError (acme-client 5.4).
 */
function installAcmeHttp(logger: Logger): void {
  if (processLogger !== undefined) return;

  processLogger = logger;
  acme.setLogger((message) => {
    const log = scopes.getStore()?.logger ?? processLogger;
    log?.debug({ detail: message }, 'acme client');
  });

  const httpAdapter = loadHttpAdapter();
  acme.axios.defaults.adapter = ((config: AxiosLikeConfig) =>
    sendRequest(httpAdapter, config)) as unknown as typeof acme.axios.defaults.adapter;
}

async function sendRequest(httpAdapter: HttpAdapter, config: AxiosLikeConfig): Promise<unknown> {
  const scope = scopes.getStore();
  if (scope?.httpsAgent !== undefined) config.httpsAgent = scope.httpsAgent;

  try {
    return await httpAdapter(config);
  } catch (error) {
    const response = (error as { response?: AxiosLikeResponse }).response;
    if (response === undefined) throw new AcmeNetworkError(config.url, error as Error);

    const problem = findProblem(parseBody(response.data));
    if (problem !== undefined && scope !== undefined)
      scope.lastProblem = { ...problem, url: config.url };

    if (response.status === 429 || problem?.type === PROBLEM_RATE_LIMITED) {
      throw new AcmeProblemError(problem?.detail ?? `rate limited by ${config.url}`, {
        problemType: problem?.type ?? PROBLEM_RATE_LIMITED,
        httpStatus: response.status,
        retryAfterMs: parseRetryAfter(response.headers['retry-after'], Date.now()),
        url: config.url,
      });
    }
    throw error;
  }
}

/**
 * Finds the problem in a response body: a problem document (RFC 8555 section 6.7), or the
 * `error` of an order, authorization or challenge whose status is `invalid`.
 */
function findProblem(body: unknown): AcmeProblem | undefined {
  if (typeof body !== 'object' || body === null) return undefined;

  const record = body as Record<string, unknown>;
  if (typeof record.type === 'string' && record.type.startsWith('urn:'))
    return record as AcmeProblem;
  if (record.status === 'invalid' && isProblem(record.error)) return record.error;

  const challenges = Array.isArray(record.challenges)
    ? (record.challenges as Record<string, unknown>[])
    : [];
  const failed = challenges.find((challenge) => isProblem(challenge.error));
  return failed === undefined ? undefined : (failed.error as AcmeProblem);
}

function isProblem(value: unknown): value is AcmeProblem {
  return (
    typeof value === 'object' && value !== null && typeof (value as AcmeProblem).type === 'string'
  );
}

function parseBody(data: unknown): unknown {
  if (typeof data !== 'string') return data;

  try {
    return JSON.parse(data);
  } catch {
    return undefined;
  }
}

/** Loads the HTTP adapter of the axios copy that acme-client itself uses. */
function loadHttpAdapter(): HttpAdapter {
  const requireHere = createRequire(import.meta.url);
  const requireFromAcme = createRequire(requireHere.resolve('acme-client'));
  const axios = requireFromAcme('axios') as { getAdapter(name: string): HttpAdapter };

  return axios.getAdapter('http');
}
