import type { IncomingMessage } from 'node:http';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import type { Target, UpgradedConnection } from '../targets/registry.ts';
import { CLIENT_CLOSED_STATUS, rawFailureResponse, type FailureKind } from './errors.ts';
import type { ExchangeLog } from './exchange.ts';
import type { CompiledRoute } from './router.ts';
import { closeFrame, FrameBoundaryTracker } from './ws-frames.ts';

/** Largest upstream handshake response head accepted. */
const MAX_RESPONSE_HEAD_BYTES = 64 * 1024;
/** Time a client gets to reply to the edge's close frame before its socket is destroyed. */
const CLOSE_GRACE_MS = 2_000;
/** TCP keep-alive probes find peers that vanished without closing (power loss, dropped NAT entry). */
const TCP_KEEP_ALIVE_MS = 30_000;

const HEAD_END = Buffer.from('\r\n\r\n');

/** Request, route and target of a tunnel. */
export interface TunnelRequest {
  req: IncomingMessage;
  socket: Duplex;
  head: Buffer;
  target: Target;
  route: CompiledRoute;
  host: string;
  /** Path and query sent upstream. */
  path: string;
  /** Flat [name, value, ...] request headers for the upstream. */
  headers: string[];
  reqId: string;
  client: string;
}

type TunnelState = 'connecting' | 'handshake' | 'open' | 'closed';

/**
 * A WebSocket connection relayed between a client and its upstream over two plain sockets. The
 * handshake response is relayed as received, status and headers. Once it is 101, bytes flow both
 * ways unchanged. Frame boundaries are followed in the upstream-to-client direction, so
 * `close(code)` can send a well-formed close frame to the client.
 */
export class WebSocketTunnel implements UpgradedConnection {
  private readonly request: TunnelRequest;
  private readonly client: Duplex;
  private readonly log: ExchangeLog;
  private readonly tunnels: Set<WebSocketTunnel>;
  private readonly tracker = new FrameBoundaryTracker();
  private readonly start = performance.now();
  private upstream: net.Socket | undefined;
  private state: TunnelState = 'connecting';
  private responseHead: Buffer[] = [];
  private responseHeadBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Timer that destroys both sockets after one side has ended its stream. */
  private endTimer: NodeJS.Timeout | undefined;
  private pendingClose: { code: number; reason: string } | undefined;
  private status = 0;
  private bytes = 0;
  private released = false;
  private logged = false;

  constructor(request: TunnelRequest, log: ExchangeLog, tunnels: Set<WebSocketTunnel>) {
    this.request = request;
    this.client = request.socket;
    this.log = log;
    this.tunnels = tunnels;
    log.open++;
    request.target.acquire();
    tunnels.add(this);
  }

  /** Connects to the upstream and sends the handshake. */
  open(): void {
    const client = this.client;
    client.on('error', (error) => this.onClientError(error));
    client.on('close', () => this.onClientClose());

    const config = this.request.route.config;
    const url = new URL(this.request.target.origin);
    const port = Number(url.port) || (url.protocol === 'https:' ? 443 : 80);
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const upstream =
      url.protocol === 'https:'
        ? tls.connect({
            host,
            port,
            servername: net.isIP(host) ? undefined : host,
            ALPNProtocols: ['http/1.1'],
          })
        : net.connect({ host, port });
    this.upstream = upstream;

    upstream.setNoDelay(true);
    upstream.on('error', (error) => this.onUpstreamError(error));
    upstream.on('close', () => this.onUpstreamClose());
    upstream.on('data', (chunk: Buffer) => this.onUpstreamData(chunk));
    upstream.once(url.protocol === 'https:' ? 'secureConnect' : 'connect', () =>
      this.sendHandshake(),
    );
    this.timer = setTimeout(
      () => this.fail('gatewayTimeout', 'upstream connect timed out'),
      config.timeouts.connectMs,
    );
  }

  /** Sends a close frame with `code` at the next frame boundary, then ends both sockets. */
  close(code: number, reason = ''): void {
    if (this.state === 'closed') return;
    if (this.state !== 'open') {
      this.destroy();
      return;
    }
    if (this.pendingClose !== undefined) return;
    this.pendingClose = { code, reason };
    if (this.tracker.atBoundary) this.sendClose();
  }

  private sendHandshake(): void {
    const { req, path, headers, head } = this.request;
    let text = `${req.method} ${path} HTTP/1.1\r\n`;
    for (let i = 0; i < headers.length; i += 2) text += `${headers[i]}: ${headers[i + 1]}\r\n`;
    // Header strings hold one byte per character (Node reads them as Latin-1), so they are
    // written back as Latin-1: the UTF-8 default would re-encode bytes above 127.
    this.upstream!.write(`${text}\r\n`, 'latin1');
    if (head.length > 0) this.upstream!.write(head);

    this.state = 'handshake';
    clearTimeout(this.timer);
    const upstreamMs = this.request.route.config.timeouts.upstreamMs;
    this.timer = setTimeout(
      () => this.fail('gatewayTimeout', 'upstream handshake timed out'),
      upstreamMs,
    );
  }

  private onUpstreamData(chunk: Buffer): void {
    if (this.state === 'open') {
      this.relayToClient(chunk);
    } else if (this.state === 'handshake') {
      this.readResponseHead(chunk);
    }
  }

  private readResponseHead(chunk: Buffer): void {
    this.responseHead.push(chunk);
    this.responseHeadBytes += chunk.length;
    const buffered = Buffer.concat(this.responseHead);
    const end = buffered.indexOf(HEAD_END);
    if (end === -1) {
      if (this.responseHeadBytes > MAX_RESPONSE_HEAD_BYTES)
        this.fail('badGateway', 'upstream response head too large');
      return;
    }

    clearTimeout(this.timer);
    this.responseHead = [];
    const head = buffered.subarray(0, end + HEAD_END.length);
    const rest = buffered.subarray(end + HEAD_END.length);
    const status = /^HTTP\/1\.[01] (\d{3})/.exec(head.toString('latin1', 0, 16));
    if (status === null) {
      this.fail('badGateway', 'upstream sent an invalid response head');
      return;
    }

    this.status = Number(status[1]);
    if (this.status === 101) this.startRelay(head, rest);
    else this.relayRefusal(head, rest);
  }

  private startRelay(head: Buffer, rest: Buffer): void {
    this.state = 'open';
    this.releaseTarget();
    this.request.target.upgrades.add(this);

    const client = this.client;
    const upstream = this.upstream!;
    const idleMs = this.request.route.config.timeouts.websocketIdleMs;
    client.write(head);
    this.bytes += head.length;
    setSocketTimeout(client, idleMs, () => this.close(1001, 'idle timeout'));
    setKeepAlive(client);
    upstream.setKeepAlive(true, TCP_KEEP_ALIVE_MS);

    client.on('data', (chunk: Buffer) => {
      if (!upstream.write(chunk)) client.pause();
    });
    upstream.on('drain', () => client.resume());
    client.on('drain', () => upstream.resume());
    client.on('end', () => this.passEnd(upstream));
    upstream.on('end', () => this.passEnd(client));
    if (rest.length > 0) this.relayToClient(rest);
  }

  /** Passes a non-101 response (such as 403 from an origin check) to the client, then closes both. */
  private relayRefusal(head: Buffer, rest: Buffer): void {
    this.state = 'closed';
    const client = this.client;
    client.write(head);
    client.write(rest);
    this.bytes += head.length + rest.length;
    const remaining = bodyLength(head) - rest.length;
    if (remaining <= 0) {
      this.finishRefusal();
      return;
    }
    // The body is short (an error page); the upstream timeout bounds the wait for it.
    let left = remaining;
    this.upstream!.on('data', (chunk: Buffer) => {
      client.write(chunk);
      this.bytes += chunk.length;
      left -= chunk.length;
      if (left <= 0) this.finishRefusal();
    });
    this.timer = setTimeout(
      () => this.finishRefusal(),
      this.request.route.config.timeouts.upstreamMs,
    );
  }

  private finishRefusal(): void {
    clearTimeout(this.timer);
    this.client.end();
    this.upstream?.destroy();
    this.writeAccessLine(this.status);
  }

  private relayToClient(chunk: Buffer): void {
    if (this.pendingClose !== undefined) {
      const boundary = this.tracker.advance(chunk, 0, true);
      if (boundary > 0) this.writeToClient(chunk.subarray(0, boundary));
      if (this.tracker.atBoundary) this.sendClose();
      return;
    }
    this.tracker.advance(chunk);
    this.writeToClient(chunk);
  }

  /**
   * Passes one side's end of stream to the other side, and destroys both sockets after
   * CLOSE_GRACE_MS if the other side has not closed, so a peer that ignores the end holds none.
   */
  private passEnd(other: Duplex): void {
    other.end();
    this.endTimer ??= setTimeout(() => this.destroy(), CLOSE_GRACE_MS).unref();
  }

  private writeToClient(chunk: Buffer): void {
    this.bytes += chunk.length;
    if (!this.client.write(chunk)) this.upstream!.pause();
  }

  private sendClose(): void {
    const { code, reason } = this.pendingClose!;
    this.state = 'closed';
    this.client.write(closeFrame(code, reason));
    this.client.end();
    this.upstream?.end();
    this.upstream?.pause();
    setTimeout(() => this.destroy(), CLOSE_GRACE_MS).unref();
  }

  private fail(kind: FailureKind, message: string): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    clearTimeout(this.timer);
    this.log.logger.warn(
      { reqId: this.request.reqId, upstream: this.request.target.origin, err: message },
      'websocket upstream failed',
    );
    if (this.client.writable) this.client.end(rawFailureResponse(kind));
    this.upstream?.destroy();
    this.writeAccessLine(kind === 'gatewayTimeout' ? 504 : 502);
  }

  private onUpstreamError(error: Error): void {
    if (this.state === 'connecting' || this.state === 'handshake') {
      this.fail('badGateway', error.message);
      return;
    }
    this.log.logger.debug(
      { reqId: this.request.reqId, err: error.message },
      'websocket upstream error',
    );
    this.destroy();
  }

  private onUpstreamClose(): void {
    if (this.state === 'connecting' || this.state === 'handshake') {
      this.fail('badGateway', 'upstream closed the connection during the handshake');
      return;
    }
    if (this.state === 'open') this.passEnd(this.client);
    this.cleanUp();
  }

  private onClientError(error: Error): void {
    this.log.logger.debug(
      { reqId: this.request.reqId, err: error.message },
      'websocket client error',
    );
    this.destroy();
  }

  private onClientClose(): void {
    clearTimeout(this.endTimer);
    if (this.state === 'connecting' || this.state === 'handshake') {
      this.state = 'closed';
      clearTimeout(this.timer);
      this.writeAccessLine(CLIENT_CLOSED_STATUS);
    }
    this.upstream?.destroy();
    this.cleanUp();
  }

  private destroy(): void {
    this.state = 'closed';
    clearTimeout(this.timer);
    clearTimeout(this.endTimer);
    this.client.destroy();
    this.upstream?.destroy();
    this.cleanUp();
  }

  private cleanUp(): void {
    this.releaseTarget();
    this.request.target.upgrades.delete(this);
    this.tunnels.delete(this);
    this.writeAccessLine(this.status === 0 ? CLIENT_CLOSED_STATUS : this.status);
  }

  private releaseTarget(): void {
    if (this.released) return;
    this.released = true;
    this.request.target.release();
  }

  private writeAccessLine(status: number): void {
    if (this.logged) return;
    this.logged = true;
    const durationMs = performance.now() - this.start;
    this.request.route.stats.record(status, durationMs, this.bytes);
    this.log.done();
    const { req, reqId, client, host, route, target } = this.request;
    this.log.accessLog.write({
      reqId,
      site: route.site.name,
      route: route.name,
      method: req.method,
      host,
      path: req.url,
      status,
      durationMs,
      bytes: this.bytes,
      upstream: target.origin,
      client,
    });
  }
}

/** Content-Length of a response head; 0 when absent, for statuses without a body. */
function bodyLength(head: Buffer): number {
  const match = /\r\ncontent-length:[ \t]*(\d+)/i.exec(head.toString('latin1'));
  return match === null ? 0 : Number(match[1]);
}

function setSocketTimeout(socket: Duplex, ms: number, onTimeout: () => void): void {
  const timed = socket as Duplex & { setTimeout?: (ms: number, cb?: () => void) => void };
  if (typeof timed.setTimeout !== 'function') return;
  timed.setTimeout(ms);
  if (ms > 0) socket.on('timeout', onTimeout);
}

function setKeepAlive(socket: Duplex): void {
  const keepAlive = socket as Duplex & { setKeepAlive?: (enable: boolean, delay: number) => void };
  keepAlive.setKeepAlive?.(true, TCP_KEEP_ALIVE_MS);
}

/** Sends the page of `kind` to an upgrade request the edge rejects, and closes the socket. */
export function refuseUpgrade(socket: Duplex, kind: FailureKind, extraHeaders = ''): void {
  if (socket.writable) socket.end(rawFailureResponse(kind, extraHeaders));
  else socket.destroy();
}
