import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { EdgeContext } from '../context.ts';
import type { DirectRoute } from './direct/exchange.ts';
import type { DirectRequestHead } from './direct/request-head.ts';
import { sendFailure, type FailureKind } from './errors.ts';
import { Exchange, type ExchangeLog } from './exchange.ts';
import type { SiteHandler } from './handler.ts';
import { edgeSubPath, normalisePath } from './path.ts';
import { readRequest, readRequestParts, type SiteRequest } from './request.ts';
import { refuseUpgrade } from './websocket.ts';

const CHALLENGE_PREFIX = '/.well-known/acme-challenge/';
const CHALLENGE_TOKEN = /^[A-Za-z0-9_-]+$/;
const DEFAULT_HTTPS_PORT = 443;

/** Response of the plain HTTP listener to a request it does not hand to the site handler. */
type PlainOutcome =
  | { kind: 'challenge'; body: string | undefined }
  | { kind: 'redirect'; location: string }
  | { kind: 'failure'; failure: FailureKind };

/**
 * Handles the plain HTTP listener. ACME HTTP-01 challenges come first for every host and are
 * served from the certificate manager. Other requests of a site with `http: serve` go to the site
 * handler as plain HTTP requests. Everything else, `/_edge` included, is redirected to HTTPS with
 * 308 (method and body kept).
 */
export class PlainHttpHandler {
  private readonly context: EdgeContext;
  private readonly sites: SiteHandler;
  private readonly log: ExchangeLog;
  private readonly httpsPort: () => number;

  /** `httpsPort` returns the port for redirect locations (the bound one when configured as 0). */
  constructor(context: EdgeContext, sites: SiteHandler, log: ExchangeLog, httpsPort: () => number) {
    this.context = context;
    this.sites = sites;
    this.log = log;
    this.httpsPort = httpsPort;
  }

  /** `request` listener of the HTTP server. */
  handleRequest(req: IncomingMessage, res: ServerResponse, expectsContinue = false): void {
    const request = readRequest(req, this.sites.hosts, false);
    if (served(request)) {
      this.sites.serve(req, res, request, expectsContinue);
      return;
    }

    // Without a checkContinue listener Node would send 100 Continue at once, so these requests
    // keep getting it.
    if (expectsContinue) res.writeContinue();
    const exchange = new Exchange(req, res, this.log, request.reqId, request.client, request.host);
    exchange.site = request.site?.name ?? '';
    exchange.recordOnClose();
    res.setHeader('x-request-id', request.reqId);
    const outcome = this.decide(request);

    if (outcome.kind === 'failure') {
      sendFailure(res, outcome.failure, true);
    } else if (outcome.kind === 'redirect') {
      const body = `redirecting to ${outcome.location}\n`;
      res.writeHead(308, {
        location: outcome.location,
        'content-type': 'text/plain; charset=utf-8',
        'content-length': Buffer.byteLength(body),
      });
      res.end(body);
    } else if (outcome.body === undefined) {
      sendFailure(res, 'notFound');
    } else {
      res.writeHead(200, {
        'content-type': 'text/plain',
        'content-length': Buffer.byteLength(outcome.body),
        'cache-control': 'no-store',
      });
      res.end(outcome.body);
    }
  }

  /** Routes a request head for the direct path: only requests of sites with `http: serve`. */
  routeDirect(head: DirectRequestHead, socket: Socket): DirectRoute | undefined {
    const { url, rawHeaders } = head;
    const request = readRequestParts(
      url,
      rawHeaders,
      socket.remoteAddress,
      this.sites.hosts,
      false,
      false,
    );
    return served(request) ? this.sites.routeDirect(head, socket, request) : undefined;
  }

  /**
   * `checkContinue` listener. A served site sends 100 Continue once it will serve the request, and
   * any other request gets it at once.
   */
  handleExpectContinue(req: IncomingMessage, res: ServerResponse): void {
    this.handleRequest(req, res, true);
  }

  /**
   * `upgrade` listener. A WebSocket handshake for a served site goes to the site handler. Any other
   * gets the same redirect or failure as a request, then the socket closes.
   */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const request = readRequest(req, this.sites.hosts, false);
    if (served(request)) {
      this.sites.serveUpgrade(req, socket, head, request);
      return;
    }

    socket.on('error', () => socket.destroy());
    const outcome = this.decide(request);
    if (outcome.kind === 'redirect') {
      socket.end(
        `HTTP/1.1 308 Permanent Redirect\r\nLocation: ${outcome.location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
      );
    } else {
      refuseUpgrade(socket, outcome.kind === 'failure' ? outcome.failure : 'notFound');
    }
  }

  private decide(request: SiteRequest): PlainOutcome {
    if (request.failure !== undefined) return { kind: 'failure', failure: request.failure };

    // Challenges come before the host check because the certificate manager tracks which names it
    // is validating, and a challenge must never be redirected.
    if (request.path.startsWith(CHALLENGE_PREFIX)) {
      const token = request.path.slice(CHALLENGE_PREFIX.length);
      const body = CHALLENGE_TOKEN.test(token)
        ? this.context.certificates.challengeResponse(request.hostName, token)
        : undefined;
      return { kind: 'challenge', body };
    }

    if (request.site === undefined) return { kind: 'failure', failure: 'misdirected' };
    // A signed deploy API request sent in clear text could be replayed over HTTPS by anyone who
    // read it, so it is rejected here rather than redirected.
    if (isDeployPath(request.path)) return { kind: 'failure', failure: 'httpsRequired' };
    const port = this.httpsPort();
    const suffix = port === DEFAULT_HTTPS_PORT ? '' : `:${port}`;
    return {
      kind: 'redirect',
      location: `https://${request.hostName}${suffix}${request.path}${request.query}`,
    };
  }
}

/** True for a path of the signed deploy API, in any spelling that normalises to it. */
function isDeployPath(path: string): boolean {
  const normalised = normalisePath(path);
  const subPath = normalised === undefined ? undefined : edgeSubPath(normalised);
  return subPath !== undefined && /^\/(deploy|deploys|rollback)(\/|$)/i.test(subPath);
}

/** True for a request of a site with `http: serve` that is not an ACME challenge. */
function served(request: SiteRequest): boolean {
  return (
    request.site !== undefined &&
    request.site.http === 'serve' &&
    request.failure === undefined &&
    !request.path.startsWith(CHALLENGE_PREFIX)
  );
}
