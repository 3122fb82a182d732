import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { Dispatcher, Pool } from 'undici';
import type { RouteConfig } from '../config/schema.ts';
import { EdgeError } from '../errors.ts';
import type { Target } from '../targets/registry.ts';
import { isStaleSocketError, upstreamFailure } from './errors.ts';
import {
  Exchange,
  exchangeOf,
  ForwardedExchange,
  readRequestBody,
  type ExchangeLog,
} from './exchange.ts';
import { clientResponseHeaders } from './headers.ts';
import type { CompiledRoute } from './router.ts';
import { UPSTREAM_TIMEOUT } from './upstream/connection.ts';
import { failExchange } from './upstream/failure.ts';
import { UpstreamPool } from './upstream/pool.ts';
import { RawProxyExchange, RETRYABLE_METHODS } from './upstream/raw-exchange.ts';

/*
 * The HTTP forwarder. Requests to an http:// origin without a body, or with one of up to
 * BUFFERED_BODY_MAX_BYTES, go over the raw client in ./upstream (one object per request, socket
 * listeners set once per connection). Larger and chunked bodies, and https:// origins, go over an
 * undici Pool through undici's raw handler interface, which streams uploads with their size limit
 * and timeouts.
 */

/**
 * Request bodies with a Content-Length up to this size are read whole before the request goes
 * upstream (nginx keeps bodies up to its 16 KiB client_body_buffer_size in memory), and are sent
 * with one write. Streamed into undici, a small POST cost about 25% more CPU, and kept per-request
 * objects alive across young-generation collections, so that under POST load V8's old generation
 * grew by about 30 MB a second and the RSS reached 120 MiB.
 */
export const BUFFERED_BODY_MAX_BYTES = 16 * 1024;

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
): Exchange {
  if (
    request.bodyLength >= 0 &&
    request.bodyLength <= BUFFERED_BODY_MAX_BYTES &&
    request.target.origin.startsWith('http:')
  ) {
    const pool = rawPoolOf(request.target, request.route.config);
    const exchange = new RawProxyExchange(req, res, log, reqId, client, request, pool);
    exchange.dispatch();
    return exchange;
  }
  const exchange = new ProxyExchange(req, res, log, reqId, client, request);
  exchange.dispatch();
  return exchange;
}

/** The connection pools of one target, in `Target.pool`: one per client. */
interface TargetPools {
  undici: Pool | undefined;
  raw: UpstreamPool | undefined;
}

function poolsOf(target: Target): TargetPools {
  let pools = target.pool as TargetPools | undefined;
  if (pools === undefined) {
    pools = { undici: undefined, raw: undefined };
    target.pool = pools;
  }
  return pools;
}

/** Returns the target's raw-client pool, creating it with the route's limits on first use. */
export function rawPoolOf(target: Target, route: RouteConfig): UpstreamPool {
  const pools = poolsOf(target);
  const existing = pools.raw;
  if (existing !== undefined && !existing.closed) return existing;

  const url = new URL(target.origin);
  const pool = new UpstreamPool({
    // URL keeps the brackets of an IPv6 literal, which net.connect does not accept.
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: url.port === '' ? 80 : Number(url.port),
    connectMs: route.timeouts.connectMs,
    responseMs: route.timeouts.upstreamMs,
    maxConnections: route.maxConnections,
    keepAliveMs: route.timeouts.upstreamKeepAliveMs,
  });
  pools.raw = pool;
  return pool;
}

type UndiciModule = typeof import('undici');
let undici: UndiciModule | undefined;
let undiciLoading: Promise<UndiciModule> | undefined;

/**
 * Loads undici on first use. Bodyless requests to http:// upstreams never need it, and it costs
 * about 10 MB of memory, so an edge without uploads or https:// upstreams never loads it.
 */
function loadUndici(): Promise<UndiciModule> {
  undiciLoading ??= import('undici').then((module) => (undici = module));
  return undiciLoading;
}

/**
 * Returns the target's undici pool, creating it with the route's limits on first use. undici must
 * be loaded (see `loadUndici`).
 */
function poolOf(target: Target, route: RouteConfig): Pool {
  const pools = poolsOf(target);
  const existing = pools.undici;
  if (existing !== undefined && !existing.closed && !existing.destroyed) return existing;

  // An idle socket is retired after upstreamKeepAliveMs, before the upstream's own idle timeout
  // (5 s in Node, uvicorn and Daphne) can close it under a request. undici also follows a
  // shorter `Keep-Alive: timeout=` hint, less a 1 s margin.
  const keepAliveMs = route.timeouts.upstreamKeepAliveMs;
  const pool = new undici!.Pool(target.origin, {
    connections: route.maxConnections,
    pipelining: 1,
    keepAliveTimeout: keepAliveMs,
    keepAliveMaxTimeout: keepAliveMs,
    keepAliveTimeoutThreshold: 1_000,
    connect: { timeout: route.timeouts.connectMs },
    headersTimeout: route.timeouts.upstreamMs,
    bodyTimeout: route.timeouts.upstreamMs,
  });
  pools.undici = pool;
  return pool;
}

/** Closes the target's pools once their running requests end. */
export async function closePool(target: Target): Promise<void> {
  const pools = target.pool as TargetPools | undefined;
  target.pool = undefined;
  if (pools === undefined) return;
  const { undici, raw } = pools;
  await Promise.all([
    undici !== undefined && !undici.closed && !undici.destroyed ? undici.close() : undefined,
    raw?.close(),
  ]);
}

/** Destroys the target's pools at once, for the end of a shutdown grace period. */
export async function destroyPool(target: Target): Promise<void> {
  const pools = target.pool as TargetPools | undefined;
  target.pool = undefined;
  if (pools === undefined) return;
  const { undici, raw } = pools;
  await Promise.all([
    undici !== undefined && !undici.destroyed ? undici.destroy() : undefined,
    raw?.destroy(),
  ]);
}
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

/** A proxied request over undici; also the undici dispatch handler for it. */
export class ProxyExchange extends ForwardedExchange implements Dispatcher.DispatchHandler {
  private readonly config: RouteConfig;
  private readonly options: Dispatcher.DispatchOptions;
  private abortUpstream: ((error?: Error) => void) | null = null;
  private resumeUpstream: (() => void) | null = null;
  private responseStarted = false;
  private waitingForDrain = false;
  private retried = false;
  private headTimer: NodeJS.Timeout | null = null;
  /** Length of a body read whole before dispatch; 0 once it is read, or when it is streamed. */
  private bodyToRead: number;
  private failure: Error | null = null;

  constructor(
    req: IncomingMessage,
    res: ServerResponse,
    log: ExchangeLog,
    reqId: string,
    client: string,
    request: ForwardRequest,
  ) {
    super(req, res, log, reqId, client, request);
    this.config = request.route.config;
    const hasBody = request.bodyLength !== 0;
    const limit = this.config.maxBodyBytes;
    this.bodyToRead =
      request.bodyLength > 0 && request.bodyLength <= BUFFERED_BODY_MAX_BYTES
        ? request.bodyLength
        : 0;
    this.options = {
      path: request.path,
      method: req.method as Dispatcher.HttpMethod,
      headers: request.headers,
      // A body read whole is set here before the first dispatch. A streamed one goes through an
      // iterator, which undici may stop without destroying the client's request (and socket). A
      // chunked body, whose length is known only at its end, is counted before each piece goes
      // upstream. undici's types do not list async iterables, which it writes like streams.
      body:
        hasBody && this.bodyToRead === 0
          ? (streamedBody(
              this,
              req,
              request.bodyLength === -1 && limit > 0 ? limit : Infinity,
            ) as unknown as Readable)
          : null,
      // With a body, the wait for the response head starts once the body is sent (onRequestSent),
      // because undici's own timer starts at dispatch and would cut long uploads.
      headersTimeout: hasBody ? 0 : this.config.timeouts.upstreamMs,
    };
  }

  dispatch(): void {
    if (this.bodyToRead > 0) {
      this.readBody(this.bodyToRead);
      return;
    }
    if (undici === undefined) {
      loadUndici().then(
        () => this.dispatch(),
        (error: Error) => this.onError(error),
      );
      return;
    }
    poolOf(this.target, this.config).dispatch(this.options, this);
  }

  onConnect(abort: (error?: Error) => void): void {
    this.abortUpstream = abort;
    if (this.finished) abort(CLIENT_GONE);
  }

  /** Marks the exchange as failed by its body size; the body's iterator then throws. */
  bodyTooLarge(): void {
    this.failure ??= BODY_TOO_LARGE;
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

    const headers = clientResponseHeaders(rawHeaders, this.reqId, this.hsts, statusCode);
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
    discardRestOfBody(this.req, this.config.maxBodyBytes);
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

  /** Reads the body into one buffer of its Content-Length, then dispatches. */
  private readBody(length: number): void {
    this.bodyToRead = 0;
    const body = Buffer.allocUnsafe(length);
    readRequestBody(this, body, 0, (filled) => {
      this.options.body = filled;
      this.dispatch();
    });
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
    const kind = error === BODY_TOO_LARGE ? 'tooLarge' : upstreamFailure(error);
    failExchange(this, error, kind, kind === 'tooLarge', this.hsts);
    // A 413 closes the connection; after any other failure it stays open for the next request.
    if (kind !== 'tooLarge') discardRestOfBody(this.req, this.config.maxBodyBytes);
  }

  private clearHeadTimer(): void {
    if (this.headTimer !== null) {
      clearTimeout(this.headTimer);
      this.headTimer = null;
    }
  }
}

/**
 * Yields the pieces of a request body, and throws BODY_TOO_LARGE instead of the piece that would
 * take it past `limit`, so the upstream never receives a whole body over the limit. undici then
 * aborts the upstream request and the client gets 413. The request stream is not destroyed when
 * the iteration stops, so a response can still be written to its connection.
 */
async function* streamedBody(
  exchange: ProxyExchange,
  req: IncomingMessage,
  limit: number,
): AsyncGenerator<Buffer> {
  let total = 0;
  for await (const chunk of req.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > limit) {
      exchange.bodyTooLarge();
      throw BODY_TOO_LARGE;
    }
    yield chunk;
  }
}

/**
 * Reads and drops the rest of a request body whose exchange ended before undici sent it all: an
 * upstream that responded (401, 502) before reading the whole upload. Node's server drops a body
 * no one started to read, but not one a reader stopped reading, and the connection then stalled
 * with the rest unread and the next request never parsed. nginx reads and drops such a body too.
 */
function discardRestOfBody(req: IncomingMessage, limit: number): void {
  if (req.complete || req.destroyed) return;
  req.removeAllListeners('data');
  req.removeAllListeners('readable');
  // A client that goes on sending is cut once the dropped bytes pass the route's body limit.
  const max = limit > 0 ? limit : DISCARD_MAX_BYTES;
  let dropped = 0;
  req.on('data', (chunk: Buffer) => {
    dropped += chunk.length;
    if (dropped > max) req.socket.destroy();
  });
  req.resume();
}

/** Bytes of an unread body dropped on a route without a body limit before the connection is cut. */
const DISCARD_MAX_BYTES = 10 * 1024 * 1024;

function onHeadTimeout(exchange: ProxyExchange): void {
  exchange.timeoutHead();
}

function onClientDrain(this: ServerResponse): void {
  const exchange = exchangeOf(this);
  if (exchange instanceof ProxyExchange) exchange.resumeAfterDrain();
}
