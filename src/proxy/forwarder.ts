import type { IncomingMessage, ServerResponse } from 'node:http';
import { Pool } from 'undici';
import type { Dispatcher } from 'undici';
import type { RouteConfig } from '../config/schema.ts';
import { EdgeError } from '../errors.ts';
import type { Target } from '../targets/registry.ts';
import { failurePage, isStaleSocketError, sendFailure, upstreamFailure } from './errors.ts';
import { Exchange, exchangeOf, type ExchangeLog } from './exchange.ts';
import { clientResponseHeaders } from './headers.ts';
import type { CompiledRoute } from './router.ts';

/*
 * The HTTP forwarder: streams a request to its target over an undici Pool and the response back,
 * through undici's raw handler interface (Buffer header lists, no per-request header objects or
 * closures). Everything engine-specific lives in this file, so another engine can replace it.
 */

/** Methods sent again when a keep-alive socket failed before any response byte. */
const RETRYABLE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/** Target, route and prepared headers of a request to forward. */
export interface ForwardRequest {
  target: Target;
  route: CompiledRoute;
  /** Host as the client sent it, for the access log. */
  host: string;
  /** Path and query sent upstream. */
  path: string;
  /** Flat [name, value, ...] list, from `upstreamRequestHeaders`. */
  headers: string[];
  /** Body length from Content-Length, -1 for a chunked body, 0 for none. */
  bodyLength: number;
  /** Strict-Transport-Security value to add, if the site sends HSTS. */
  hsts: string | undefined;
}

/** Creates the exchange of a proxied request and sends the request upstream. */
export function forward(
  req: IncomingMessage,
  res: ServerResponse,
  log: ExchangeLog,
  reqId: string,
  client: string,
  request: ForwardRequest,
): ProxyExchange {
  const exchange = new ProxyExchange(req, res, log, reqId, client, request);
  exchange.dispatch();
  return exchange;
}

/** Returns the target's pool, creating it with the route's limits on first use. */
export function poolOf(target: Target, route: RouteConfig): Pool {
  const existing = target.pool as Pool | undefined;
  if (existing !== undefined && !existing.closed && !existing.destroyed) return existing;

  // An idle socket is retired after upstreamKeepAliveMs, before the upstream's own idle timeout
  // (5 s in Node, uvicorn and Daphne) can close it under a request. undici also follows a
  // shorter `Keep-Alive: timeout=` hint, less a 1 s margin.
  const keepAliveMs = route.timeouts.upstreamKeepAliveMs;
  const pool = new Pool(target.origin, {
    connections: route.maxConnections,
    pipelining: 1,
    keepAliveTimeout: keepAliveMs,
    keepAliveMaxTimeout: keepAliveMs,
    keepAliveTimeoutThreshold: 1_000,
    connect: { timeout: route.timeouts.connectMs },
    headersTimeout: route.timeouts.upstreamMs,
    bodyTimeout: route.timeouts.upstreamMs,
  });
  target.pool = pool;
  return pool;
}

/** Closes the target's pool once its running requests end. */
export async function closePool(target: Target): Promise<void> {
  const pool = target.pool as Pool | undefined;
  target.pool = undefined;
  if (pool !== undefined && !pool.closed && !pool.destroyed) await pool.close();
}

/** Destroys the target's pool at once, for the end of a shutdown grace period. */
export async function destroyPool(target: Target): Promise<void> {
  const pool = target.pool as Pool | undefined;
  target.pool = undefined;
  if (pool !== undefined && !pool.destroyed) await pool.destroy();
}

const UPSTREAM_TIMEOUT = new EdgeError(
  'EDGE_UPSTREAM_TIMEOUT',
  'upstream sent no response head in time',
  {
    status: 504,
  },
);
const CLIENT_GONE = new EdgeError('EDGE_CLIENT_GONE', 'client closed the connection', {
  status: 499,
});
const BODY_TOO_LARGE = new EdgeError(
  'EDGE_BODY_TOO_LARGE',
  'request body exceeds the route limit',
  {
    status: 413,
  },
);

/** A proxied request; also the undici dispatch handler for it. */
export class ProxyExchange extends Exchange implements Dispatcher.DispatchHandler {
  private readonly target: Target;
  private readonly config: RouteConfig;
  private readonly options: Dispatcher.DispatchOptions;
  private readonly hsts: string | undefined;
  private readonly countBody: boolean;
  private abortUpstream: ((error?: Error) => void) | null = null;
  private resumeUpstream: (() => void) | null = null;
  private responseStarted = false;
  private waitingForDrain = false;
  private retried = false;
  private released = false;
  private headTimer: NodeJS.Timeout | null = null;
  private bodyBytes = 0;
  private failure: Error | null = null;

  constructor(
    req: IncomingMessage,
    res: ServerResponse,
    log: ExchangeLog,
    reqId: string,
    client: string,
    request: ForwardRequest,
  ) {
    super(req, res, log, reqId, client, request.host);
    this.route = request.route;
    this.site = request.route.site.name;
    this.target = request.target;
    this.config = request.route.config;
    this.upstream = request.target.origin;
    this.hsts = request.hsts;
    this.countBody = request.bodyLength === -1 && this.config.maxBodyBytes > 0;
    const hasBody = request.bodyLength !== 0;
    this.options = {
      path: request.path,
      method: req.method as Dispatcher.HttpMethod,
      headers: request.headers,
      body: hasBody ? req : null,
      // With a body, the wait for the response head starts once the body is sent (onRequestSent),
      // because undici's own timer starts at dispatch and would cut long uploads.
      headersTimeout: hasBody ? 0 : this.config.timeouts.upstreamMs,
    };
    request.target.acquire();
  }

  dispatch(): void {
    poolOf(this.target, this.config).dispatch(this.options, this);
  }

  onConnect(abort: (error?: Error) => void): void {
    this.abortUpstream = abort;
    if (this.finished) abort(CLIENT_GONE);
  }

  onBodySent(chunk: Buffer | number): void {
    if (!this.countBody) return;
    this.bodyBytes += typeof chunk === 'number' ? chunk : chunk.length;
    if (this.bodyBytes > this.config.maxBodyBytes && this.failure === null) {
      this.failure = BODY_TOO_LARGE;
      this.abortUpstream?.(BODY_TOO_LARGE);
    }
  }

  onRequestSent(): void {
    if (this.options.body === null || this.responseStarted || this.finished) return;
    this.headTimer = setTimeout(onHeadTimeout, this.config.timeouts.upstreamMs, this);
  }

  onHeaders(
    statusCode: number,
    rawHeaders: Buffer[],
    resume: () => void,
    _statusText: string,
  ): boolean {
    // 1xx responses such as 103 Early Hints are not relayed; 100 never arrives because the edge
    // does not send Expect upstream.
    if (statusCode < 200) return true;
    this.clearHeadTimer();
    this.responseStarted = true;
    this.resumeUpstream = resume;
    if (this.finished) return false;

    const headers = clientResponseHeaders(rawHeaders, this.reqId, this.hsts);
    try {
      this.res.writeHead(statusCode, headers);
    } catch (error) {
      // Node rejects header bytes it deems invalid (ERR_INVALID_CHAR), so the response is treated
      // as an invalid upstream response instead of passing them on.
      this.failure = error as Error;
      this.abortUpstream?.(error as Error);
      return false;
    }
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.bytes += chunk.length;
    const res = this.res;
    if (res.write(chunk)) return true;
    if (!this.waitingForDrain) {
      this.waitingForDrain = true;
      res.on('drain', onClientDrain);
    }
    return false;
  }

  onComplete(_trailers: string[] | null): void {
    this.releaseTarget();
    if (this.finished) return;
    this.res.end();
    this.finish(this.res.statusCode, this.bytes);
  }

  onError(error: Error): void {
    this.clearHeadTimer();
    if (this.shouldRetry(error)) {
      this.retried = true;
      this.abortUpstream = null;
      this.dispatch();
      return;
    }
    this.releaseTarget();
    this.fail(this.failure ?? error);
  }

  override clientGone(): void {
    this.clearHeadTimer();
    this.releaseTarget();
    this.abortUpstream?.(CLIENT_GONE);
  }

  /** Stops waiting for a response head that did not arrive within the upstream timeout. */
  timeoutHead(): void {
    this.headTimer = null;
    this.abortUpstream?.(UPSTREAM_TIMEOUT);
  }

  /** Resumes reading from the upstream once the client drained its buffer. */
  resumeAfterDrain(): void {
    this.waitingForDrain = false;
    this.res.off('drain', onClientDrain);
    this.resumeUpstream?.();
  }

  private shouldRetry(error: Error): boolean {
    return (
      !this.retried &&
      !this.responseStarted &&
      this.failure === null &&
      this.options.body === null &&
      !this.finished &&
      RETRYABLE_METHODS.has(this.options.method) &&
      isStaleSocketError(error)
    );
  }

  private fail(error: Error): void {
    if (this.finished) return;
    const res = this.res;
    const kind = error === BODY_TOO_LARGE ? 'tooLarge' : upstreamFailure(error);
    const fields = {
      reqId: this.reqId,
      upstream: this.upstream,
      err: error.message,
      code: codeOf(error),
    };

    if (res.headersSent) {
      // Part of the response is out, so cutting the connection is the only signal left.
      this.log.logger.warn(fields, 'upstream failed mid-response');
      res.destroy();
      this.finish(res.statusCode, this.bytes);
      return;
    }

    this.log.logger.warn(fields, 'upstream request failed');
    res.setHeader('x-request-id', this.reqId);
    const status = sendFailure(res, kind, kind === 'tooLarge');
    this.finish(status, failurePage(kind).length);
  }

  private clearHeadTimer(): void {
    if (this.headTimer !== null) {
      clearTimeout(this.headTimer);
      this.headTimer = null;
    }
  }

  private releaseTarget(): void {
    if (this.released) return;
    this.released = true;
    this.target.release();
  }
}

function onHeadTimeout(exchange: ProxyExchange): void {
  exchange.timeoutHead();
}

function onClientDrain(this: ServerResponse): void {
  (exchangeOf(this) as ProxyExchange | undefined)?.resumeAfterDrain();
}

function codeOf(error: Error): string | undefined {
  return (error as { code?: string }).code;
}
