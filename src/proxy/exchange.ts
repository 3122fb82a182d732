import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { performance } from 'node:perf_hooks';
import type { Logger } from '../log.ts';
import type { Target } from '../targets/registry.ts';
import { AccessLog } from './access-log.ts';
import { CLIENT_CLOSED_STATUS } from './errors.ts';
import type { ForwardRequest } from './forwarder.ts';
import type { CompiledRoute } from './router.ts';

/** Shared by every exchange of one edge: where access lines go and how many requests are open. */
export class ExchangeLog {
  readonly logger: Logger;
  /** Requests started and not yet finished, read by the graceful shutdown. */
  open = 0;
  private idleWaiters: (() => void)[] = [];

  readonly accessLog: AccessLog;

  constructor(logger: Logger, access: boolean) {
    this.logger = logger.child({ module: 'proxy' });
    this.accessLog = new AccessLog(logger, access);
  }

  /** Resolves once no request is open. */
  whenIdle(): Promise<void> {
    if (this.open === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  done(): void {
    this.open--;
    if (this.open === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const wake of waiters) wake();
    }
  }
}

const EXCHANGE = Symbol('exchange');
/** Socket property listing the socket's exchanges that have not finished, oldest first. */
const OPEN_EXCHANGES = Symbol('openExchanges');

type TaggedResponse = ServerResponse & { [EXCHANGE]?: Exchange };
type TrackedSocket = Socket & { [OPEN_EXCHANGES]?: Exchange[] };

/** Returns the newest unfinished exchange of a connection, the request its parser is reading. */
export function openExchangeOf(socket: Duplex): Exchange | undefined {
  return (socket as TrackedSocket)[OPEN_EXCHANGES]?.at(-1);
}

/** Returns the exchange of a response, for listeners shared by every response. */
export function exchangeOf(res: ServerResponse): Exchange | undefined {
  return (res as TaggedResponse)[EXCHANGE];
}

/**
 * One request and its response, from the moment the edge reads it to the access log line. The
 * forwarder extends it with the upstream handler, so a proxied request costs one object.
 *
 * A client that leaves early is detected by one `close` listener per connection rather than one
 * per response, because the connection's close is what ends every unfinished response on it
 * (pipelined ones included). Responses the edge writes itself are recorded when they close, see
 * `recordOnClose`; the forwarder calls `finish` itself.
 */
export class Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly log: ExchangeLog;
  readonly reqId: string;
  readonly client: string;
  readonly start: number;
  site: string;
  route: CompiledRoute | undefined;
  host: string;
  upstream: string;
  bytes = 0;
  finished = false;
  private readonly socket: TrackedSocket;

  constructor(
    req: IncomingMessage,
    res: ServerResponse,
    log: ExchangeLog,
    reqId: string,
    client: string,
    host: string,
  ) {
    this.req = req;
    this.res = res;
    this.log = log;
    this.reqId = reqId;
    this.client = client;
    this.start = performance.now();
    this.site = '';
    this.route = undefined;
    this.host = host;
    this.upstream = '';
    log.open++;
    (res as TaggedResponse)[EXCHANGE] = this;
    this.socket = req.socket as TrackedSocket;
    trackOnSocket(this, this.socket);
  }

  /** Records the exchange when its response closes, for responses the edge writes itself. */
  recordOnClose(): void {
    this.res.on('close', onResponseClose);
  }

  /** Called when the response or its connection closed before `finish`: completed, or the client left. */
  responseClosed(): void {
    if (this.res.writableFinished) {
      this.finish(this.res.statusCode, contentLength(this.res));
    } else {
      // Finished first, so the upstream failure the abort causes is neither retried nor sent a page.
      this.finish(CLIENT_CLOSED_STATUS, this.bytes);
      this.clientGone();
    }
  }

  /**
   * Records the exchange with the status of the error page sent for its malformed body or its
   * timeout, then ends its upstream side as for a client that left.
   */
  rejected(status: number, bytes: number): void {
    this.finish(status, bytes);
    this.clientGone();
  }

  /** Hook for subclasses: the client closed the connection before the response ended. */
  clientGone(): void {}

  /** Records the request once: route counters and the access line. */
  finish(status: number, bytes: number): void {
    if (this.finished) return;
    this.finished = true;
    this.bytes = bytes;
    untrackOnSocket(this, this.socket);

    const durationMs = performance.now() - this.start;
    this.route?.stats.record(status, durationMs, bytes);
    if (this.log.accessLog.enabled) this.writeAccessLine(status, durationMs);
    this.log.done();
  }

  private writeAccessLine(status: number, durationMs: number): void {
    const req = this.req;
    this.log.accessLog.write({
      reqId: this.reqId,
      site: this.site,
      route: this.route === undefined ? '' : this.route.name,
      method: req.method,
      host: this.host,
      path: req.url,
      status,
      durationMs,
      bytes: this.bytes,
      upstream: this.upstream,
      client: this.client,
    });
  }
}

/**
 * An exchange forwarded to a target: it counts as in flight on the target from its creation
 * until `releaseTarget`, which a deploy's drain waits for. Both upstream clients extend it.
 */
export class ForwardedExchange extends Exchange {
  protected readonly target: Target;
  /** Strict-Transport-Security value sent with the response, if the site sends HSTS. */
  protected readonly hsts: string | undefined;
  private released = false;

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
    this.upstream = request.target.origin;
    this.hsts = request.hsts;
    request.target.acquire();
  }

  /** Ends the exchange's count on the target, once. */
  protected releaseTarget(): void {
    if (this.released) return;
    this.released = true;
    this.target.release();
  }
}

/**
 * Reads the request body of `exchange` into `target` from `offset`, then calls `done` with the
 * filled part, unless the exchange finished first. The body must have a Content-Length that fits:
 * Node's parser ends the body at that length. A client that leaves before the end closes its
 * response, which ends the exchange, so `done` never runs or runs after it finished.
 */
export function readRequestBody(
  exchange: Exchange,
  target: Buffer,
  offset: number,
  done: (filled: Buffer) => void,
): void {
  let end = offset;
  const req = exchange.req;
  req.on('data', (chunk: Buffer) => {
    end += chunk.copy(target, end);
  });
  req.once('end', () => {
    if (!exchange.finished) done(end === target.length ? target : target.subarray(0, end));
  });
}

function onResponseClose(this: TaggedResponse): void {
  const exchange = this[EXCHANGE];
  if (exchange !== undefined && !exchange.finished) exchange.responseClosed();
}

function trackOnSocket(exchange: Exchange, socket: TrackedSocket): void {
  const open = socket[OPEN_EXCHANGES];
  if (open !== undefined) {
    open.push(exchange);
    return;
  }

  socket[OPEN_EXCHANGES] = [exchange];
  if (socket.destroyed) {
    // The connection closed before the request was handled, so its close event has passed.
    process.nextTick(onSocketClose.bind(socket));
  } else {
    socket.once('close', onSocketClose);
  }
}

function untrackOnSocket(exchange: Exchange, socket: TrackedSocket): void {
  const open = socket[OPEN_EXCHANGES];
  if (open === undefined) return;
  if (open.length === 1 && open[0] === exchange) {
    open.pop();
    return;
  }
  const index = open.indexOf(exchange);
  if (index !== -1) open.splice(index, 1);
}

/** Ends every exchange of a closed connection that has not finished: its client left. */
function onSocketClose(this: TrackedSocket): void {
  const open = this[OPEN_EXCHANGES];
  if (open === undefined) return;
  for (const exchange of [...open]) {
    if (!exchange.finished) exchange.responseClosed();
  }
}

function contentLength(res: ServerResponse): number {
  const value = res.getHeader('content-length');
  if (typeof value === 'number') return value;
  if (typeof value === 'string') return Number.parseInt(value, 10) || 0;
  return 0;
}
