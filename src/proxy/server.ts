import http, { type Server, type ServerOptions, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { EdgeContext } from '../context.ts';
import { TLS_SERVER_OPTIONS } from '../tls/policy.ts';
import { FAILURES, failurePage, rawFailureResponse, type FailureKind } from './errors.ts';
import { DirectPath } from './direct/path.ts';
import { ExchangeLog, openExchangeOf } from './exchange.ts';
import { destroyPool } from './forwarder.ts';
import { newRequestId } from './headers.ts';
import { SiteHandler } from './handler.ts';
import { PlainHttpHandler } from './plain.ts';
import { refuseUpgrade } from './websocket.ts';
import { buildRouter, closeReplacedPools } from './routes.ts';

/** Close code sent to open WebSockets when the edge shuts down (RFC 6455: going away). */
export const SHUTDOWN_CLOSE_CODE = 1001;
/** Maximum interval between Node's checks of the header and request timeouts. */
const MAX_TIMEOUT_CHECK_INTERVAL_MS = 1_000;

export interface ProxyServers {
  /** Port 80: ACME challenges, sites with `http: serve`, else a redirect to HTTPS. */
  http: Server;
  /** Port 443: TLS termination and proxying. */
  https: Server;
  listen(): Promise<void>;
  /** Ports actually bound, useful when the configuration asked for port 0. */
  ports(): { http: number; https: number };
  /**
   * Stops accepting, closes WebSockets with 1001, lets in-flight requests finish for up to
   * `graceMs`, then closes every remaining connection.
   */
  close(graceMs: number): Promise<void>;
}

/** Builds the routes and both listeners from the context; `listen()` binds them. */
export async function createProxyServers(context: EdgeContext): Promise<ProxyServers> {
  const { config, logger } = context;
  const log = new ExchangeLog(logger, config.log.access);
  const router = buildRouter(context);
  closeReplacedPools(context);

  const sites = new SiteHandler(context, router, log);
  const options = serverOptions(context);

  const plain = new PlainHttpHandler(
    context,
    sites,
    log,
    () => config.listen.redirectPort ?? portOf(httpsServer),
  );
  const httpServer = http.createServer(options);
  httpServer.on('request', (req, res) =>
    afterPendingResponses(req.socket, () => plain.handleRequest(req, res), res),
  );
  httpServer.on('checkContinue', (req, res) =>
    afterPendingResponses(req.socket, () => plain.handleExpectContinue(req, res), res),
  );
  httpServer.on('upgrade', (req, socket: Duplex, head: Buffer) =>
    afterPendingResponses(socket, () => plain.handleUpgrade(req, socket, head)),
  );

  const defaultCertificate = context.certificates.defaultCertificate();
  const httpsServer = https.createServer({
    ...TLS_SERVER_OPTIONS,
    ...options,
    cert: defaultCertificate.cert,
    key: defaultCertificate.key,
    handshakeTimeout: config.timeouts.headersMs,
    SNICallback: (name, callback) => context.certificates.sniCallback(name, callback),
  });
  context.sessionTickets?.applyTo(httpsServer);
  followDefaultCertificate(httpsServer, context);
  httpsServer.on('request', (req, res) =>
    afterPendingResponses(req.socket, () => sites.handleRequest(req, res), res),
  );
  httpsServer.on('checkContinue', (req, res) =>
    afterPendingResponses(req.socket, () => sites.handleExpectContinue(req, res), res),
  );
  httpsServer.on('upgrade', (req, socket: Duplex, head: Buffer) =>
    afterPendingResponses(socket, () => sites.handleUpgrade(req, socket, head)),
  );
  httpsServer.on('tlsClientError', (error, socket) => {
    // Scanners and expired handshakes produce these constantly, so they stay at debug level.
    log.logger.debug({ err: error.message, client: socket.remoteAddress }, 'tls handshake failed');
    socket.destroy();
  });
  const direct = new DirectPath({
    log,
    router: (head, socket, secure) =>
      secure ? sites.routeDirectSecure(head, socket) : plain.routeDirect(head, socket),
    firstRequestMs: config.timeouts.headersMs,
    keepAliveMs: config.timeouts.keepAliveMs,
  });
  direct.attach(httpServer, false);
  direct.attach(httpsServer, true);

  for (const server of [httpServer, httpsServer]) {
    // The edge is not a forward proxy: CONNECT gets 405 instead of Node's silent disconnect.
    server.on('connect', (_req, socket: Duplex) =>
      afterPendingResponses(socket, () => refuseUpgrade(socket, 'methodNotAllowed')),
    );
    server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) =>
      onClientError(log, error, socket),
    );
  }

  const servers: ProxyServers = {
    http: httpServer,
    https: httpsServer,
    async listen() {
      const { address, httpPort, httpsPort } = config.listen;
      await listen(httpServer, httpPort, address);
      await listen(httpsServer, httpsPort, address);
      logger.info({ address, ...servers.ports() }, 'listening');
    },
    ports() {
      return { http: portOf(httpServer), https: portOf(httpsServer) };
    },
    async close(graceMs: number) {
      sites.closing = true;
      // After a start that failed on the first port, no listener opened and none closes.
      const listened = httpServer.listening || httpsServer.listening;
      const closed = Promise.all([closeServer(httpServer), closeServer(httpsServer)]);
      direct.closeIdleConnections();
      httpServer.closeIdleConnections();
      httpsServer.closeIdleConnections();
      sites.closeWebSockets(SHUTDOWN_CLOSE_CODE);

      const drained = await waitFor(log.whenIdle(), graceMs);
      if (!drained)
        logger.warn({ open: log.open, graceMs }, 'shutdown grace ended with requests open');
      direct.closeAllConnections();
      httpServer.closeAllConnections();
      httpsServer.closeAllConnections();
      for (const slot of context.targets.entries()) {
        if (slot.current !== undefined) await destroyPool(slot.current);
      }
      await closed;
      log.accessLog.flush();
      if (listened) logger.info({}, 'listeners closed');
    },
  };
  return servers;
}

/**
 * Node's defaults are replaced by the configured limits: time to send the request head, time
 * to send the whole request (0 allows uploads of any duration), and idle keep-alive time.
 */
function serverOptions(context: EdgeContext): ServerOptions {
  const { headersMs, requestMs, keepAliveMs } = context.config.timeouts;
  return {
    // The edge rejects missing and duplicate Host headers itself, with its own page and log line.
    requireHostHeader: false,
    // Node requires the header timeout to fit in the request timeout when both are set.
    headersTimeout: requestMs > 0 ? Math.min(headersMs, requestMs) : headersMs,
    requestTimeout: requestMs,
    keepAliveTimeout: keepAliveMs,
    connectionsCheckingInterval: Math.min(MAX_TIMEOUT_CHECK_INTERVAL_MS, headersMs),
  };
}

/**
 * Node's TLS server uses its own `cert`/`key` options when a client sends no SNI, because the SNI
 * callback only runs when a name is sent. Those options follow the certificate manager's default
 * certificate: when it changes (a renewal), the next connection rebuilds the server context.
 */
function followDefaultCertificate(server: https.Server, context: EdgeContext): void {
  let current = context.certificates.defaultCertificate();
  server.prependListener('connection', () => {
    const next = context.certificates.defaultCertificate();
    if (next === current) return;
    current = next;
    server.setSecureContext({ ...TLS_SERVER_OPTIONS, cert: next.cert, key: next.key });
    context.sessionTickets?.applyTo(server);
  });
}

function onClientError(log: ExchangeLog, error: NodeJS.ErrnoException, socket: Duplex): void {
  const code = error.code ?? '';
  // Node's own handler makes the same check: once a response has started on this socket, an
  // error page would corrupt it, so the connection is only closed.
  const started = ownerOf(socket)?.headersSent;
  if (code === 'ECONNRESET' || code === 'EPIPE' || !socket.writable || started === true) {
    socket.destroy();
    return;
  }
  // Bytes after a request with Connection: close. That request's response is still to come and
  // closes the connection, so the bytes are dropped instead of a 400 replacing that response.
  const exchange = openExchangeOf(socket);
  if (
    code === 'HPE_CLOSED_CONNECTION' &&
    (exchange !== undefined || ownerOf(socket) !== undefined)
  ) {
    log.logger.debug({ reqId: exchange?.reqId, code }, 'bytes after Connection: close dropped');
    return;
  }
  const kind: FailureKind =
    code === 'HPE_HEADER_OVERFLOW'
      ? 'headersTooLarge'
      : code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? 'requestTimeout'
        : 'badRequest';
  // A request whose head was accepted has an exchange, which logs it under its own id.
  const reqId = exchange?.reqId ?? newRequestId();
  const client = (socket as Socket).remoteAddress ?? '';
  const status = FAILURES[kind].status;
  log.logger.info({ reqId, code, client, err: error.message }, 'malformed request');
  socket.end(rawFailureResponse(kind, `X-Request-Id: ${reqId}\r\n`));
  if (exchange !== undefined) {
    exchange.rejected(status, failurePage(kind).length);
    return;
  }
  // Node's parser rejected the request head, so its method, target and Host are not known.
  log.accessLog.write({
    reqId,
    site: '',
    route: '',
    method: undefined,
    host: '',
    path: undefined,
    status,
    durationMs: 0,
    bytes: failurePage(kind).length,
    upstream: '',
    client,
  });
}

function listen(server: Server, port: number, address: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) resolve();
    else server.close(() => resolve());
  });
}

function portOf(server: Server): number {
  const address = server.address();
  return address !== null && typeof address === 'object' ? (address as AddressInfo).port : 0;
}

async function waitFor(promise: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  const done = await Promise.race([promise.then(() => true), timeout]);
  clearTimeout(timer);
  return done;
}

/**
 * Runs `next` once Node's server has finished the responses it still owes on the socket before
 * `own` (the request's own response; none for an upgrade). Node emits 'request', 'upgrade' and
 * 'connect' as soon as it parses the request, even while responses to requests pipelined before
 * it are still running. An upgrade handled at once would go out ahead of theirs, and a
 * ServerResponse for an ignored upgrade could not take the socket they still own. A request is
 * handled one at a time per connection, as nginx does, so that none goes upstream behind a
 * response that closes the connection (a 413 before its body), where its answer would be lost.
 */
export function afterPendingResponses(
  socket: Duplex,
  next: () => void,
  own?: ServerResponse,
): void {
  const queued = socket as QueuedSocket;
  const waiting = queued[WAITING];
  if (waiting !== undefined) {
    waiting.push({ next, own });
    return;
  }
  const first = ownerOf(socket);
  if (first === undefined || first === own) {
    next();
    return;
  }
  queued[WAITING] = [{ next, own }];
  startInTurn(queued, first);
}

/** A request or upgrade waiting for the responses before it; `own` is its response, if any. */
interface Waiting {
  next: () => void;
  own: ServerResponse | undefined;
}

const WAITING = Symbol('requests waiting for earlier responses');
type QueuedSocket = Duplex & { [WAITING]?: Waiting[] };

/**
 * Starts the socket's waiting requests in order, each once the responses before it are written.
 * One set of listeners serves the whole queue, so a long pipeline costs no more per request.
 */
function startInTurn(socket: QueuedSocket, first: ServerResponse): void {
  let current = first;
  // Node stops passing the socket's 'drain' on to its response when it emits 'upgrade', so a
  // response larger than the socket's buffer (a static file piped into it) would stall.
  const onDrain = (): void => {
    const owner = ownerOf(socket);
    if (owner?.writableNeedDrain === true) owner.emit('drain');
  };
  const stop = (): void => {
    current.off('finish', onFinish);
    socket.off('close', stop);
    socket.off('drain', onDrain);
    delete socket[WAITING];
  };
  // Node's own 'finish' listener, added first, detaches the response and hands the socket to the
  // next pipelined one, so by the time this listener runs the socket has its next owner, if any.
  const onFinish = (): void => {
    const waiting = socket[WAITING] ?? [];
    while (waiting.length > 0) {
      // A response that closed the connection (Connection: close) leaves no socket to reply on,
      // so the requests behind it are not started.
      if (socket.destroyed || socket.writableEnded) break;
      const owner = ownerOf(socket);
      const head = waiting[0]!;
      if (owner !== undefined && owner !== head.own) {
        current = owner;
        owner.once('finish', onFinish);
        return;
      }
      waiting.shift();
      head.next();
    }
    stop();
  };
  current.once('finish', onFinish);
  socket.on('drain', onDrain);
  socket.once('close', stop);
}

/** Returns the response Node's server is writing on the socket, if any. */
function ownerOf(socket: Duplex): ServerResponse | undefined {
  return (socket as { _httpMessage?: ServerResponse | null })._httpMessage ?? undefined;
}
