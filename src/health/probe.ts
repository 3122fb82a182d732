import http from 'node:http';
import https from 'node:https';
import { performance } from 'node:perf_hooks';

/** User-Agent of health probes, so upstream access logs can tell them apart from visitors. */
export const HEALTH_PROBE_USER_AGENT = 'caliente-edge-health';
const UPGRADE_REQUIRED = 426;

export interface ProbeOptions {
  /** Upstream origin such as http://10.213.1.5:8000. */
  origin: string;
  /** Path requested on the upstream, such as /healthz. */
  path: string;
  /** Host header: the site's first host, so frameworks that check it (Django ALLOWED_HOSTS) accept the probe. */
  host: string;
  timeoutMs: number;
  /**
   * Counts 426 Upgrade Required as healthy: a WebSocket-only server (a Daphne or `ws` process
   * behind a WebSocket route) returns it for a plain GET, which shows that it is up.
   */
  upgradeRequiredIsHealthy?: boolean;
  /** Aborts the probe, for shutdown. */
  signal?: AbortSignal;
}

export interface ProbeResult {
  healthy: boolean;
  /** Time until the response head arrived, or until the failure. */
  latencyMs: number;
  /** HTTP status of the answer, when one arrived. */
  status?: number;
  error?: string;
}

export type ProbeFunction = (options: ProbeOptions) => Promise<ProbeResult>;

/**
 * Sends one GET to the upstream on a fresh connection. A 2xx or 3xx answer within the timeout is
 * healthy, and so is 426 when `upgradeRequiredIsHealthy` is set. Never rejects: every failure becomes an unhealthy result with its error message.
 */
export function probeUpstream(options: ProbeOptions): Promise<ProbeResult> {
  const url = new URL(options.path, options.origin);
  const client = url.protocol === 'https:' ? https : http;
  const started = performance.now();
  const elapsed = () => Math.round((performance.now() - started) * 10) / 10;

  return new Promise((resolve) => {
    let settled = false;
    const finish = (result: ProbeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(result);
    };

    const request = client.request(url, {
      method: 'GET',
      agent: false,
      // SNI and certificate checks use the upstream's own name, like the proxy's requests.
      signal: options.signal,
      headers: {
        host: options.host,
        // The edge terminates TLS, so the app must see the probe as it sees proxied requests.
        'x-forwarded-proto': 'https',
        'user-agent': HEALTH_PROBE_USER_AGENT,
        accept: '*/*',
      },
    });

    const timer = setTimeout(() => {
      request.destroy(new Error(`timed out after ${options.timeoutMs} ms`));
    }, options.timeoutMs);

    request.on('response', (response) => {
      const status = response.statusCode ?? 0;
      const latencyMs = elapsed();
      const healthy =
        (status >= 200 && status < 400) ||
        (status === UPGRADE_REQUIRED && options.upgradeRequiredIsHealthy === true);
      const result: ProbeResult = healthy
        ? { healthy, latencyMs, status }
        : { healthy, latencyMs, status, error: `HTTP ${status}` };
      response.on('error', () => finish(result));
      response.on('end', () => finish(result));
      response.on('close', () => finish(result));
      response.resume();
    });

    request.on('error', (error) => {
      finish({ healthy: false, latencyMs: elapsed(), error: error.message });
    });

    request.end();
  });
}
