import type { IncomingMessage, ServerResponse } from 'node:http';
import { upstreamFailure } from '../errors.ts';
import { exchangeOf, ForwardedExchange, readRequestBody, type ExchangeLog } from '../exchange.ts';
import type { ForwardRequest } from '../forwarder.ts';
import {
  COPY_WHEN_QUEUED_BYTES,
  type UpstreamConnection,
  type UpstreamRequest,
} from './connection.ts';
import { failExchange } from './failure.ts';
import type { UpstreamPool } from './pool.ts';
import { requestHead } from './request-head.ts';
import { toClientHeaders } from './response-headers.ts';

/** Body pieces up to this size are copied before they are written to the client. */
const SMALL_PIECE_BYTES = 4 * 1024;

/**
 * Methods sent again when a reused keep-alive socket failed before any response byte: the
 * idempotent ones, as nginx retries them (a buffered body is sent again whole).
 */
export const RETRYABLE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/**
 * A proxied request without a body, or with a small one read whole first, sent over the raw client,
 * and the handler of its response.
 */
export class RawProxyExchange extends ForwardedExchange implements UpstreamRequest {
  readonly method: string;
  readonly requestHead: string;
  requestBytes: Buffer | null = null;
  readonly responseMs: number;
  /** Content-Length of a body still to read; 0 once read, or for none. */
  private bodyToRead: number;
  connection: UpstreamConnection | null = null;
  private readonly pool: UpstreamPool;
  private retried = false;
  private waitingForDrain = false;

  constructor(
    req: IncomingMessage,
    res: ServerResponse,
    log: ExchangeLog,
    reqId: string,
    client: string,
    request: ForwardRequest,
    pool: UpstreamPool,
  ) {
    super(req, res, log, reqId, client, request);
    this.pool = pool;
    this.method = req.method!;
    this.requestHead = requestHead(this.method, request.path, request.headers);
    this.responseMs = request.route.config.timeouts.upstreamMs;
    this.bodyToRead = request.bodyLength;
  }

  dispatch(): void {
    if (this.bodyToRead > 0) {
      this.readBody(this.bodyToRead);
      return;
    }
    this.pool.request(this);
  }

  /** Reads the body behind the request head in one buffer, then sends both with one write. */
  private readBody(length: number): void {
    this.bodyToRead = 0;
    const headBytes = this.requestHead.length;
    const bytes = Buffer.allocUnsafe(headBytes + length);
    bytes.write(this.requestHead, 0, 'latin1');
    readRequestBody(this, bytes, headBytes, (filled) => {
      this.requestBytes = filled;
      this.pool.request(this);
    });
  }

  onResponseHead(status: number, headers: string[]): boolean {
    try {
      this.res.writeHead(status, toClientHeaders(headers, this.reqId, this.hsts, status));
    } catch (error) {
      // Node rejects header bytes it deems invalid (ERR_INVALID_CHAR), which makes the response invalid.
      this.connection?.abort();
      this.releaseTarget();
      failExchange(this, error as Error, 'badGateway', false, this.hsts);
      return false;
    }
    return true;
  }

  onResponseData(chunk: Buffer): boolean {
    this.bytes += chunk.length;
    const res = this.res;
    // A small piece, or a medium one behind bytes already queued, is copied, so the read buffer
    // stays with the connection and a stalled client keeps no read buffer per piece. A larger
    // piece left queued, or corked until the next tick, keeps pointing into the read buffer.
    const socket = res.socket;
    const queued = socket === null || res.writableLength > 0 || socket.writableCorked > 0;
    const copy =
      chunk.length <= SMALL_PIECE_BYTES || (queued && chunk.length <= COPY_WHEN_QUEUED_BYTES);
    const drained = res.write(copy ? Buffer.from(chunk) : chunk);
    if (!copy && res.writableLength > 0) this.connection?.giveUpReadBuffer();
    if (drained) return true;
    if (!this.waitingForDrain) {
      this.waitingForDrain = true;
      res.on('drain', onClientDrain);
    }
    // The rest of this read is still parsed and buffered, but the socket reads no more until 'drain'.
    this.connection?.pause();
    return true;
  }

  onResponseEnd(): void {
    this.releaseTarget();
    if (this.finished) return;
    this.res.end();
    this.finish(this.res.statusCode, this.bytes);
  }

  onUpstreamError(error: Error, retryable: boolean): void {
    if (retryable && !this.retried && !this.finished && RETRYABLE_METHODS.has(this.method)) {
      this.retried = true;
      this.pool.request(this, true);
      return;
    }
    this.releaseTarget();
    failExchange(this, error, upstreamFailure(error), false, this.hsts);
  }

  override clientGone(): void {
    this.releaseTarget();
    if (this.connection !== null) this.connection.abort();
    else this.pool.cancel(this);
  }

  /** Resumes reading from the upstream once the client drained its buffer. */
  resumeAfterDrain(): void {
    this.waitingForDrain = false;
    this.res.off('drain', onClientDrain);
    this.connection?.resume();
  }
}

function onClientDrain(this: ServerResponse): void {
  const exchange = exchangeOf(this);
  if (exchange instanceof RawProxyExchange) exchange.resumeAfterDrain();
}
