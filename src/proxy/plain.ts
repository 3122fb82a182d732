import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { EdgeContext } from '../context.ts';
import { sendFailure, type FailureKind } from './errors.ts';
import { Exchange, type ExchangeLog } from './exchange.ts';
import { requestIdOf, scanRequestHead, type RequestHead } from './headers.ts';
import { HostTable, requestHost } from './host.ts';
import { parseRequestTarget } from './path.ts';
import { peerAddress } from './trusted.ts';
import { refuseUpgrade } from './websocket.ts';

const CHALLENGE_PREFIX = '/.well-known/acme-challenge/';
const DEFAULT_HTTPS_PORT = 443;

/** Outcome of a plain-HTTP request: an ACME key authorization, a redirect, or a failure page. */
type PlainOutcome =
  | { kind: 'challenge'; body: string | undefined }
  | { kind: 'redirect'; location: string }
  | { kind: 'failure'; failure: FailureKind };

/**
 * Handles the plain HTTP listener. It serves ACME HTTP-01 challenges from the certificate manager
 * and redirects everything else, `/_edge` included, to HTTPS with 308 (method and body kept).
 */
export class PlainHttpHandler {
  private readonly context: EdgeContext;
  private readonly hosts: HostTable;
  private readonly log: ExchangeLog;
  private readonly httpsPort: () => number;

  /** `httpsPort` returns the port for redirect locations (the bound one when configured as 0). */
  constructor(context: EdgeContext, log: ExchangeLog, httpsPort: () => number) {
    this.context = context;
    this.hosts = new HostTable(context.config.sites);
    this.log = log;
    this.httpsPort = httpsPort;
  }

  /** `request` listener of the HTTP server. */
  handleRequest(req: IncomingMessage, res: ServerResponse): void {
    const head = scanRequestHead(req.rawHeaders);
    const reqId = requestIdOf(head);
    const exchange = new Exchange(
      req,
      res,
      this.log,
      reqId,
      peerAddress(req.socket.remoteAddress),
      head.host ?? '',
    );
    res.setHeader('x-request-id', reqId);
    const outcome = this.decide(req, head, exchange);

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

  /** `upgrade` listener: a WebSocket over plain HTTP gets the same redirect, then the socket closes. */
  handleUpgrade(req: IncomingMessage, socket: Duplex): void {
    socket.on('error', () => socket.destroy());
    const head = scanRequestHead(req.rawHeaders);
    const outcome = this.decide(req, head, undefined);
    if (outcome.kind === 'redirect') {
      socket.end(
        `HTTP/1.1 308 Permanent Redirect\r\nLocation: ${outcome.location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
      );
    } else {
      refuseUpgrade(socket, outcome.kind === 'failure' ? outcome.failure : 'notFound');
    }
  }

  private decide(
    req: IncomingMessage,
    head: RequestHead,
    exchange: Exchange | undefined,
  ): PlainOutcome {
    const target = parseRequestTarget(req.url ?? '');
    if (target === undefined) return { kind: 'failure', failure: 'badRequest' };
    const value = requestHost(this.hosts, target.authority, head.hostCount, head.host);
    if (value === undefined) return { kind: 'failure', failure: 'missingHost' };

    const match = this.hosts.match(value);
    if (match.kind === 'invalid') return { kind: 'failure', failure: 'missingHost' };
    if (exchange !== undefined) exchange.host = value;
    if (exchange !== undefined && match.kind === 'site') exchange.site = match.site.name;

    // Challenges come before the host check because the certificate manager tracks which names it
    // is validating, and a challenge must never be redirected.
    if (target.path.startsWith(CHALLENGE_PREFIX)) {
      const token = target.path.slice(CHALLENGE_PREFIX.length);
      const valid = /^[A-Za-z0-9_-]+$/.test(token);
      return {
        kind: 'challenge',
        body: valid ? this.context.certificates.challengeResponse(match.host, token) : undefined,
      };
    }

    if (match.kind === 'unknown') return { kind: 'failure', failure: 'misdirected' };
    const port = this.httpsPort();
    const suffix = port === DEFAULT_HTTPS_PORT ? '' : `:${port}`;
    return {
      kind: 'redirect',
      location: `https://${match.host}${suffix}${target.path}${target.query}`,
    };
  }
}
