import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { SiteConfig } from '../config/schema.ts';
import type { EdgeContext } from '../context.ts';
import { HSTS_HEADER_VALUE } from '../tls/policy.ts';
import { dispatchEdgeApi } from './edge-dispatch.ts';
import { FAILURES, failurePage, sendFailure, type FailureKind } from './errors.ts';
import { Exchange, type ExchangeLog } from './exchange.ts';
import { forward } from './forwarder.ts';
import {
  requestIdOf,
  scanRequestHead,
  upstreamRequestHeaders,
  type RequestHead,
} from './headers.ts';
import { HostTable, requestHost } from './host.ts';
import {
  edgeSubPath,
  encodePath,
  matchesPrefix,
  normalisePath,
  parseRequestTarget,
} from './path.ts';
import type { CompiledRoute, Router } from './router.ts';
import { peerAddress, TrustedProxies } from './trusted.ts';
import { refuseUpgrade, WebSocketTunnel } from './websocket.ts';

/** Socket property caching the site of the connection's TLS server name (null: no name). */
const SNI_SITE = Symbol('sniSite');

/** A request resolved to a site and a route, or the failure that ends it. */
interface Resolved {
  head: RequestHead;
  reqId: string;
  client: string;
  host: string;
  site: SiteConfig | undefined;
  /** Raw path and query. */
  path: string;
  query: string;
  /** Path used for routing, see normalisePath. */
  normalised: string;
  failure: FailureKind | undefined;
}

/**
 * Handles requests and WebSocket upgrades on the HTTPS listener. Each one goes through the Host
 * and SNI checks, the network guard, `/_edge` and routing, then to static files or the forwarder.
 */
export class HttpsHandler {
  readonly tunnels = new Set<WebSocketTunnel>();
  /** Set when shutting down: responses ask clients to close their connections. */
  closing = false;
  private readonly context: EdgeContext;
  private readonly router: Router;
  private readonly hosts: HostTable;
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
    if (this.closing) res.shouldKeepAlive = false;
    const resolved = this.resolve(req, req.socket as TLSSocket);
    if (resolved.failure !== undefined || resolved.site === undefined) {
      this.answer(req, res, resolved, resolved.failure ?? 'misdirected', undefined);
      return;
    }

    const site = resolved.site;
    const subPath = edgeSubPath(resolved.normalised);
    if (subPath !== undefined) {
      this.serveEdgeApi(req, res, resolved, subPath);
      return;
    }

    const route = this.router.match(site, resolved.normalised);
    if (route === undefined) {
      this.answer(req, res, resolved, 'notFound', undefined);
    } else if (route.files !== undefined) {
      this.serveStatic(req, res, resolved, route, expectsContinue);
    } else {
      this.proxy(req, res, resolved, route, expectsContinue);
    }
  }

  /** `checkContinue` listener: 100 Continue is sent only once the request will be served. */
  handleExpectContinue(req: IncomingMessage, res: ServerResponse): void {
    this.handleRequest(req, res, true);
  }

  /** `upgrade` listener of the HTTPS server. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', ignoreSocketError);
    const resolved = this.resolve(req, socket as TLSSocket);
    if (resolved.failure !== undefined || resolved.site === undefined) {
      this.refuse(req, socket, resolved, resolved.failure ?? 'misdirected');
      return;
    }

    const route =
      edgeSubPath(resolved.normalised) === undefined
        ? this.router.match(resolved.site, resolved.normalised)
        : undefined;
    const upgrade = req.headers.upgrade;
    if (route === undefined || route.slot === undefined) {
      this.refuse(req, socket, resolved, 'notFound');
    } else if (typeof upgrade !== 'string' || upgrade.toLowerCase() !== 'websocket') {
      this.refuse(req, socket, resolved, 'badRequest');
    } else if (!route.config.websocket) {
      this.refuse(req, socket, resolved, 'websocketDisabled');
    } else if (route.slot.current === undefined) {
      this.refuse(req, socket, resolved, 'noTarget');
    } else {
      socket.off('error', ignoreSocketError);
      const tunnel = new WebSocketTunnel(
        {
          req,
          socket,
          head,
          target: route.slot.current,
          route,
          host: resolved.host,
          path: this.upstreamPath(route, resolved),
          headers: this.forwardingHeaders(req, resolved, true),
          reqId: resolved.reqId,
          client: resolved.client,
        },
        this.log,
        this.tunnels,
      );
      tunnel.open();
    }
  }

  /** Sends a close frame with `code` on every open WebSocket. */
  closeWebSockets(code: number): void {
    for (const tunnel of [...this.tunnels]) tunnel.close(code, 'edge shutting down');
  }

  private resolve(req: IncomingMessage, socket: TLSSocket): Resolved {
    const head = scanRequestHead(req.rawHeaders);
    const resolved: Resolved = {
      head,
      reqId: requestIdOf(head),
      client: peerAddress(socket.remoteAddress),
      host: '',
      site: undefined,
      path: '',
      query: '',
      normalised: '',
      failure: undefined,
    };

    // RFC 9112 section 6.1 asks for 501 when a request uses a transfer coding the server lacks.
    if (head.unsupportedCoding) return fail(resolved, 'unsupportedCoding');
    const target = parseRequestTarget(req.url ?? '');
    if (target === undefined) return fail(resolved, 'badRequest');
    const hostValue = requestHost(this.hosts, target.authority, head.hostCount, head.host);
    if (hostValue === undefined) return fail(resolved, 'missingHost');
    resolved.host = hostValue;

    const match = this.hosts.match(hostValue);
    if (match.kind === 'invalid') return fail(resolved, 'missingHost');
    if (match.kind === 'unknown') return fail(resolved, 'misdirected');
    if (!this.sniAgrees(socket, match.site)) return fail(resolved, 'misdirected');
    resolved.site = match.site;

    const normalised = normalisePath(target.path);
    if (normalised === undefined) return fail(resolved, 'badRequest');
    resolved.path = target.path;
    resolved.query = target.query;
    resolved.normalised = normalised;

    const guard = this.context.networkGuard;
    if (guard !== undefined && !guard.allows(resolved.client, match.site))
      return fail(resolved, 'forbiddenNetwork');
    return resolved;
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
    resolved: Resolved,
    subPath: string,
  ): void {
    const exchange = this.exchange(req, res, resolved, undefined);
    exchange.route = undefined;
    dispatchEdgeApi(this.context.api, this.context.logger, {
      req,
      res,
      site: resolved.site!,
      clientAddress: resolved.client,
      subPath,
      query: resolved.query,
      secure: true,
      reqId: resolved.reqId,
    });
  }

  private serveStatic(
    req: IncomingMessage,
    res: ServerResponse,
    resolved: Resolved,
    route: CompiledRoute,
    expectsContinue: boolean,
  ): void {
    this.exchange(req, res, resolved, route);
    if (!matchesPrefix(resolved.path, route.prefix)) {
      // Routed only through normalisation (`/x/../assets/a.js`): such paths are not served.
      this.send(res, 'notFound');
      return;
    }
    if (expectsContinue) res.writeContinue();
    const subPath = resolved.path.slice(route.prefix.length) || '/';
    route.files!.handle(req, res, subPath, resolved.query, (failure) => {
      if (failure !== undefined && !res.headersSent) this.send(res, failure);
    });
  }

  private proxy(
    req: IncomingMessage,
    res: ServerResponse,
    resolved: Resolved,
    route: CompiledRoute,
    expectsContinue: boolean,
  ): void {
    const target = route.slot!.current;
    if (target === undefined) {
      this.answer(req, res, resolved, 'noTarget', route);
      return;
    }
    const limit = route.config.maxBodyBytes;
    if (limit > 0 && resolved.head.bodyLength > limit) {
      this.answer(req, res, resolved, 'tooLarge', route, true);
      return;
    }

    if (expectsContinue) res.writeContinue();
    forward(req, res, this.log, resolved.reqId, resolved.client, {
      target,
      route,
      host: resolved.host,
      path: this.upstreamPath(route, resolved),
      headers: this.forwardingHeaders(req, resolved, false),
      bodyLength: resolved.head.bodyLength,
      hsts: this.hsts.get(route.site),
    });
  }

  private forwardingHeaders(req: IncomingMessage, resolved: Resolved, upgrade: boolean): string[] {
    return upstreamRequestHeaders(req.rawHeaders, {
      peer: resolved.client,
      trusted: this.trusted.has(resolved.client),
      secure: true,
      host: resolved.host,
      reqId: resolved.reqId,
      upgrade,
    });
  }

  /** Raw path and query, minus the route prefix when the route strips it. */
  private upstreamPath(route: CompiledRoute, resolved: Resolved): string {
    const { path, normalised, query } = resolved;
    if (!route.config.stripPrefix || route.prefix === '') return path + query;
    if (matchesPrefix(path, route.prefix)) return (path.slice(route.prefix.length) || '/') + query;
    return encodePath(normalised.slice(route.prefix.length) || '/') + query;
  }

  private exchange(
    req: IncomingMessage,
    res: ServerResponse,
    resolved: Resolved,
    route: CompiledRoute | undefined,
  ): Exchange {
    const exchange = new Exchange(
      req,
      res,
      this.log,
      resolved.reqId,
      resolved.client,
      resolved.host,
    );
    exchange.site = resolved.site?.name ?? '';
    exchange.route = route;
    res.setHeader('x-request-id', resolved.reqId);
    const hsts = resolved.site === undefined ? undefined : this.hsts.get(resolved.site);
    if (hsts !== undefined) res.setHeader('strict-transport-security', hsts);
    return exchange;
  }

  /** Sends the page of `failure` and records the request. */
  private answer(
    req: IncomingMessage,
    res: ServerResponse,
    resolved: Resolved,
    failure: FailureKind,
    route: CompiledRoute | undefined,
    close = false,
  ): void {
    this.exchange(req, res, resolved, route);
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
    resolved: Resolved,
    failure: FailureKind,
  ): void {
    refuseUpgrade(socket, failure, `X-Request-Id: ${resolved.reqId}\r\n`);
    this.log.accessLog.write({
      reqId: resolved.reqId,
      site: resolved.site?.name ?? '',
      route: '',
      method: req.method,
      host: resolved.host,
      path: req.url,
      status: FAILURES[failure].status,
      durationMs: 0,
      bytes: failurePage(failure).length,
      upstream: '',
      client: resolved.client,
    });
  }
}

function fail(resolved: Resolved, failure: FailureKind): Resolved {
  resolved.failure = failure;
  return resolved;
}

function ignoreSocketError(): void {}
