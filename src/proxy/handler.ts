import { ServerResponse, type IncomingMessage } from 'node:http';
import { isIP, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { SiteConfig } from '../config/schema.ts';
import type { EdgeContext } from '../context.ts';
import { HSTS_HEADER_VALUE } from '../tls/policy.ts';
import type { DirectRoute } from './direct/exchange.ts';
import type { DirectRequestHead } from './direct/request-head.ts';
import { dispatchEdgeApi } from './edge-dispatch.ts';
import { FAILURES, failurePage, sendFailure, type FailureKind } from './errors.ts';
import { Exchange, type ExchangeLog } from './exchange.ts';
import { forward, rawPoolOf } from './forwarder.ts';
import { requestIdOf, upstreamRequestHeaders } from './headers.ts';
import { HostTable } from './host.ts';
import { edgeSubPath, encodePath, matchesPrefix, normalisePath } from './path.ts';
import { readRequest, readRequestParts, type SiteRequest } from './request.ts';
import type { CompiledRoute, Router } from './router.ts';
import { TrustedProxies } from './trusted.ts';
import { requestHead } from './upstream/request-head.ts';
import { refuseUpgrade, WebSocketTunnel } from './websocket.ts';

/** Socket property caching the site of the connection's TLS server name (null: no name). */
const SNI_SITE = Symbol('sniSite');

/**
 * Handles requests and WebSocket upgrades of sites: every request on the HTTPS listener, and on the
 * plain HTTP listener those of sites with `http: serve`. Each one goes through the Host and (over
 * TLS) SNI checks, the network guard, `/_edge` and routing, then to static files or the forwarder.
 */
export class SiteHandler {
  readonly tunnels = new Set<WebSocketTunnel>();
  /** Set when shutting down: responses ask clients to close their connections. */
  closing = false;
  private readonly context: EdgeContext;
  private readonly router: Router;
  /** Host lookup, shared with the plain HTTP listener. */
  readonly hosts: HostTable;
  private readonly trusted: TrustedProxies;
  private readonly log: ExchangeLog;
  private readonly hsts = new Map<SiteConfig, string | undefined>();

  constructor(context: EdgeContext, router: Router, log: ExchangeLog) {
    this.context = context;
    this.router = router;
    this.hosts = new HostTable(context.config.sites);
    this.trusted = new TrustedProxies(context.config.trustedProxies);
    this.log = log;
    for (const site of context.config.sites) {
      const on = site.hsts ?? (site.name === 'prod' || site.name === 'production');
      this.hsts.set(site, on ? HSTS_HEADER_VALUE : undefined);
    }
  }

  /** `request` listener of the HTTPS server. */
  handleRequest(req: IncomingMessage, res: ServerResponse, expectsContinue = false): void {
    this.serve(req, res, readRequest(req, this.hosts, true), expectsContinue);
  }

  /** Serves a request read by `readRequest`, from either listener. */
  serve(
    req: IncomingMessage,
    res: ServerResponse,
    request: SiteRequest,
    expectsContinue: boolean,
  ): void {
    if (this.closing) res.shouldKeepAlive = false;
    const failure = this.check(request, req.socket);
    if (failure !== undefined || request.site === undefined) {
      this.answer(req, res, request, failure ?? 'misdirected', undefined);
      return;
    }

    const site = request.site;
    const subPath = edgeSubPath(request.normalised);
    if (subPath !== undefined) {
      this.serveEdgeApi(req, res, request, subPath);
      return;
    }

    const route = this.router.match(site, request.normalised);
    if (route === undefined) {
      this.answer(req, res, request, 'notFound', undefined);
    } else if (route.files !== undefined) {
      this.serveStatic(req, res, request, route, expectsContinue);
    } else {
      this.proxy(req, res, request, route, expectsContinue);
    }
  }

  /** `checkContinue` listener: 100 Continue is sent only once the request will be served. */
  handleExpectContinue(req: IncomingMessage, res: ServerResponse): void {
    this.handleRequest(req, res, true);
  }

  /** `upgrade` listener of the HTTPS server. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.serveUpgrade(req, socket, head, readRequest(req, this.hosts, true));
  }

  /** Serves a WebSocket upgrade read by `readRequest`, from either listener. */
  serveUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, request: SiteRequest): void {
    if (!isWebSocketUpgrade(req) && request.bodyLength === 0) {
      this.serveIgnoringUpgrade(req, socket, request);
      return;
    }
    socket.on('error', ignoreSocketError);
    const failure = this.check(request, socket);
    if (failure !== undefined || request.site === undefined) {
      this.refuse(req, socket, request, failure ?? 'misdirected');
      return;
    }

    const route =
      edgeSubPath(request.normalised) === undefined
        ? this.router.match(request.site, request.normalised)
        : undefined;
    if (route === undefined || route.slot === undefined) {
      this.refuse(req, socket, request, 'notFound');
    } else if (!isWebSocketUpgrade(req)) {
      this.refuse(req, socket, request, 'badRequest');
    } else if (!route.config.websocket) {
      this.refuse(req, socket, request, 'websocketDisabled');
    } else if (route.slot.current === undefined) {
      this.refuse(req, socket, request, 'noTarget');
    } else {
      socket.off('error', ignoreSocketError);
      const tunnel = new WebSocketTunnel(
        {
          req,
          socket,
          head,
          target: route.slot.current,
          route,
          host: request.host,
          path: this.upstreamPath(route, request),
          headers: this.forwardingHeaders(req.rawHeaders, request, true),
          reqId: request.reqId,
          client: request.client,
        },
        this.log,
        this.tunnels,
      );
      tunnel.open();
    }
  }

  /** Routes a request head of the HTTPS listener for the direct path; see `routeDirect`. */
  routeDirectSecure(head: DirectRequestHead, socket: Socket): DirectRoute | undefined {
    const request = readRequestParts(
      head.url,
      head.rawHeaders,
      socket.remoteAddress,
      this.hosts,
      true,
      false,
    );
    return this.routeDirect(head, socket, request);
  }

  /**
   * Routes a request for the direct path, which forwards it as it is: a request that passes every
   * check of `serve` and goes to a proxied route with a running http:// target. Anything else
   * returns undefined, and Node's server then handles the request through `serve`. The request
   * is read without an id, and gets one only when the direct path takes it.
   */
  routeDirect(
    head: DirectRequestHead,
    socket: Socket,
    request: SiteRequest,
  ): DirectRoute | undefined {
    if (this.check(request, socket) !== undefined || request.site === undefined) return undefined;
    if (edgeSubPath(request.normalised) !== undefined) return undefined;
    const route = this.router.match(request.site, request.normalised);
    const target = route?.slot?.current;
    if (route === undefined || target === undefined || !target.origin.startsWith('http:')) {
      return undefined;
    }
    // Node's server rejects a body over the route's limit with 413.
    const limit = route.config.maxBodyBytes;
    if (limit > 0 && head.bodyLength > limit) return undefined;

    request.reqId = requestIdOf(request);
    const headers = this.forwardingHeaders(head.rawHeaders, request, false);
    return {
      route,
      target,
      pool: rawPoolOf(target, route.config),
      requestHead: requestHead(head.method, this.upstreamPath(route, request), headers),
      reqId: request.reqId,
      client: request.client,
      host: request.host,
      hsts: request.secure ? this.hsts.get(route.site) : undefined,
    };
  }

  /**
   * Serves a request whose Upgrade names another protocol than WebSocket, such as curl's `h2c`,
   * as a plain request, the way nginx ignores an upgrade it does not offer. Node hands such a
   * request over as an upgrade, with the socket detached from its parser, so the response goes
   * out on that socket and closes it.
   */
  private serveIgnoringUpgrade(req: IncomingMessage, socket: Duplex, request: SiteRequest): void {
    const res = new ServerResponse(req);
    res.shouldKeepAlive = false;
    res.assignSocket(socket as Socket);
    res.once('finish', () => {
      res.detachSocket(socket as Socket);
      socket.end();
    });
    this.serve(req, res, request, false);
  }

  /** Sends a close frame with `code` on every open WebSocket. */
  closeWebSockets(code: number): void {
    for (const tunnel of [...this.tunnels]) tunnel.close(code, 'edge shutting down');
  }

  /**
   * Completes the checks `readRequest` leaves to the site handler and sets `normalised`. Returns
   * the failure that ends the request, or undefined when it may be served.
   */
  private check(request: SiteRequest, socket: Duplex): FailureKind | undefined {
    if (request.failure !== undefined) return request.failure;
    // RFC 9112 section 6.1 asks for 501 when a request uses a transfer coding the server lacks.
    if (request.unsupportedCoding) return 'unsupportedCoding';
    const site = request.site;
    if (site === undefined) return 'misdirected';
    if (request.secure && !this.sniAgrees(socket as TLSSocket, site)) return 'misdirected';

    const normalised = normalisePath(request.path);
    if (normalised === undefined) return 'badRequest';
    request.normalised = normalised;

    const guard = this.context.networkGuard;
    if (guard !== undefined && !guard.allows(request.client, site)) return 'forbiddenNetwork';
    return undefined;
  }

  /** Checks the TLS server name: one that belongs to another site than Host is misdirected. */
  private sniAgrees(socket: TLSSocket, site: SiteConfig): boolean {
    const tagged = socket as TLSSocket & { [SNI_SITE]?: SiteConfig | null };
    let sniSite = tagged[SNI_SITE];
    if (sniSite === undefined) {
      // The server name is fixed for the connection's lifetime, so it is looked up once.
      sniSite = this.siteOfServerName(socket.servername);
      tagged[SNI_SITE] = sniSite;
    }
    return sniSite === null || sniSite === site;
  }

  /** Returns the site of a TLS server name: undefined for another name, null for none. */
  private siteOfServerName(servername: unknown): SiteConfig | null | undefined {
    // RFC 6066 forbids IP literals as server names, but some clients send one: read it as none.
    if (typeof servername !== 'string' || servername === '' || isIP(servername) !== 0) return null;
    return this.hosts.siteOf(servername.toLowerCase().replace(/\.$/, ''));
  }

  private serveEdgeApi(
    req: IncomingMessage,
    res: ServerResponse,
    request: SiteRequest,
    subPath: string,
  ): void {
    const exchange = this.exchange(req, res, request, undefined);
    exchange.route = undefined;
    dispatchEdgeApi(this.context.api, this.context.logger, {
      req,
      res,
      site: request.site!,
      clientAddress: request.client,
      subPath,
      query: request.query,
      secure: request.secure,
      reqId: request.reqId,
    });
  }

  private serveStatic(
    req: IncomingMessage,
    res: ServerResponse,
    request: SiteRequest,
    route: CompiledRoute,
    expectsContinue: boolean,
  ): void {
    this.exchange(req, res, request, route);
    if (!matchesPrefix(request.path, route.prefix)) {
      // Routed only through normalisation (`/x/../assets/a.js`): such paths are not served.
      this.send(res, 'notFound');
      return;
    }
    // Static routes serve only GET and HEAD, so any other method gets 405 before its upload.
    if (expectsContinue && (req.method === 'GET' || req.method === 'HEAD')) res.writeContinue();
    const subPath = request.path.slice(route.prefix.length) || '/';
    route.files!.handle(req, res, subPath, request.query, (failure) => {
      if (failure !== undefined && !res.headersSent) this.send(res, failure);
    });
  }

  private proxy(
    req: IncomingMessage,
    res: ServerResponse,
    request: SiteRequest,
    route: CompiledRoute,
    expectsContinue: boolean,
  ): void {
    const target = route.slot!.current;
    if (target === undefined) {
      this.answer(req, res, request, 'noTarget', route);
      return;
    }
    const limit = route.config.maxBodyBytes;
    if (limit > 0 && request.bodyLength > limit) {
      this.answer(req, res, request, 'tooLarge', route, true);
      return;
    }

    if (expectsContinue) res.writeContinue();
    forward(req, res, this.log, request.reqId, request.client, {
      target,
      route,
      host: request.host,
      path: this.upstreamPath(route, request),
      headers: this.forwardingHeaders(req.rawHeaders, request, false),
      bodyLength: request.bodyLength,
      hsts: request.secure ? this.hsts.get(route.site) : undefined,
    });
  }

  private forwardingHeaders(
    rawHeaders: readonly string[],
    request: SiteRequest,
    upgrade: boolean,
  ): string[] {
    return upstreamRequestHeaders(rawHeaders, {
      peer: request.client,
      trusted: this.trusted.has(request.client),
      secure: request.secure,
      host: request.host,
      reqId: request.reqId,
      upgrade,
    });
  }

  /** Raw path and query, minus the route prefix when the route strips it. */
  private upstreamPath(route: CompiledRoute, request: SiteRequest): string {
    const { path, normalised, query } = request;
    if (!route.config.stripPrefix || route.prefix === '') return path + query;
    if (matchesPrefix(path, route.prefix)) return (path.slice(route.prefix.length) || '/') + query;
    return encodePath(normalised.slice(route.prefix.length) || '/') + query;
  }

  private exchange(
    req: IncomingMessage,
    res: ServerResponse,
    request: SiteRequest,
    route: CompiledRoute | undefined,
  ): Exchange {
    const exchange = new Exchange(req, res, this.log, request.reqId, request.client, request.host);
    exchange.site = request.site?.name ?? '';
    exchange.route = route;
    exchange.recordOnClose();
    res.setHeader('x-request-id', request.reqId);
    const hsts =
      request.secure && request.site !== undefined ? this.hsts.get(request.site) : undefined;
    if (hsts !== undefined) res.setHeader('strict-transport-security', hsts);
    return exchange;
  }

  /** Sends the page of `failure` and records the request. */
  private answer(
    req: IncomingMessage,
    res: ServerResponse,
    request: SiteRequest,
    failure: FailureKind,
    route: CompiledRoute | undefined,
    close = false,
  ): void {
    this.exchange(req, res, request, route);
    this.send(res, failure, close);
  }

  /** A 400 or 501 closes the connection, because the request's framing is in doubt. */
  private send(res: ServerResponse, failure: FailureKind, close = false): void {
    const status = FAILURES[failure].status;
    sendFailure(res, failure, close || status === 400 || status === 501);
  }

  private refuse(
    req: IncomingMessage,
    socket: Duplex,
    request: SiteRequest,
    failure: FailureKind,
  ): void {
    refuseUpgrade(socket, failure, `X-Request-Id: ${request.reqId}\r\n`);
    this.log.accessLog.write({
      reqId: request.reqId,
      site: request.site?.name ?? '',
      route: '',
      method: req.method,
      host: request.host,
      path: req.url,
      status: FAILURES[failure].status,
      durationMs: 0,
      bytes: failurePage(failure).length,
      upstream: '',
      client: request.client,
    });
  }
}

function ignoreSocketError(): void {}

function isWebSocketUpgrade(req: IncomingMessage): boolean {
  const upgrade = req.headers.upgrade;
  return typeof upgrade === 'string' && upgrade.toLowerCase() === 'websocket';
}
