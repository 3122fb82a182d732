import { STATUS_CODES } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Target } from '../../targets/registry.ts';
import { CLIENT_CLOSED_STATUS, FAILURES, failurePage, upstreamFailure } from '../errors.ts';
import type { ExchangeLog } from '../exchange.ts';
import type { CompiledRoute } from '../router.ts';
import type { UpstreamConnection, UpstreamRequest } from '../upstream/connection.ts';
import type { UpstreamPool } from '../upstream/pool.ts';
import { RETRYABLE_METHODS } from '../upstream/raw-exchange.ts';
import { toClientHeaders } from '../upstream/response-headers.ts';
import type { DirectRequestHead } from './request-head.ts';
import { equalsLower } from '../ascii.ts';

/** A request the site handler routed to a proxied target, ready for the direct path. */
export interface DirectRoute {
  route: CompiledRoute;
  target: Target;
  pool: UpstreamPool;
  /** Request line and header lines for the upstream, ending with the blank line. */
  requestHead: string;
  reqId: string;
  client: string;
  /** Host as the client sent it, for the access log. */
  host: string;
  hsts: string | undefined;
}

/** The client connection of an exchange. */
export interface DirectClient {
  readonly log: ExchangeLog;
  /** The response should end the connection (shutdown, or the client asked). */
  readonly closeAfterResponse: boolean;
  /** Writes to the client socket; false when its buffer is full. */
  write(data: string | Buffer, more?: string | Buffer, last?: string): boolean;
  /**
   * The last write left a Buffer it was given queued in the socket, so that Buffer's memory must
   * not be reused until the socket drains.
   */
  readonly heldBuffer: boolean;
  /** Calls `exchange.resumeUpstream()` once the client socket drains. */
  waitForDrain(exchange: DirectExchange): void;
  /** Cuts the client connection, for a response that failed after its head was sent. */
  cut(): void;
  exchangeDone(exchange: DirectExchange): void;
}

const NO_BODY = 0;
const FIXED_LENGTH = 1;
const CHUNKED = 2;
const LAST_CHUNK = '0\r\n\r\n';

/**
 * One proxied request on the direct path, from its head to the access line. It is also the raw
 * upstream client's request, and writes the response head and body straight to the client socket.
 */
export class DirectExchange implements UpstreamRequest {
  readonly method: string;
  readonly requestHead: string;
  /** The head followed by the request body, or null for a request without one. */
  readonly requestBytes: Buffer | null;
  readonly responseMs: number;
  connection: UpstreamConnection | null = null;
  private readonly client: DirectClient;
  private readonly routed: DirectRoute;
  private readonly url: string;
  private readonly start = performance.now();
  /** Response head not written yet: it leaves together with the first body bytes. */
  private pendingHead: string | null = null;
  private headWritten = false;
  private framing = NO_BODY;
  private status = 0;
  private bytes = 0;
  private retried = false;
  private released = false;
  finished = false;

  /** `body` may point into a read buffer that is reused: it is copied here. */
  constructor(
    client: DirectClient,
    routed: DirectRoute,
    head: DirectRequestHead,
    body: Buffer | null,
  ) {
    this.client = client;
    this.routed = routed;
    this.method = head.method;
    this.url = head.url;
    this.requestHead = routed.requestHead;
    this.requestBytes = body === null ? null : withBody(routed.requestHead, body);
    this.responseMs = routed.route.config.timeouts.upstreamMs;
    client.log.open++;
    routed.target.acquire();
  }

  dispatch(): void {
    this.routed.pool.request(this);
  }

  onResponseHead(status: number, headers: string[]): boolean {
    this.status = status;
    const clientHeaders = toClientHeaders(headers, this.routed.reqId, this.routed.hsts, status);
    let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n`;
    let length = false;
    let date = false;
    for (let i = 0; i < clientHeaders.length; i += 2) {
      const name = clientHeaders[i]!;
      if (name.length === 14 && equalsLower(name, 'content-length')) length = true;
      else if (name.length === 4 && equalsLower(name, 'date')) date = true;
      head += `${name}: ${clientHeaders[i + 1]!}\r\n`;
    }
    if (!date) head += `Date: ${httpDate()}\r\n`;

    if (this.method === 'HEAD' || status === 204 || status === 304) {
      this.framing = NO_BODY;
    } else if (length) {
      this.framing = FIXED_LENGTH;
    } else {
      this.framing = CHUNKED;
      head += 'Transfer-Encoding: chunked\r\n';
    }
    if (this.client.closeAfterResponse) head += 'Connection: close\r\n';
    this.pendingHead = `${head}\r\n`;
    return true;
  }

  onResponseData(chunk: Buffer): boolean {
    if (this.finished) return false;
    if (this.framing === NO_BODY) return true;
    this.bytes += chunk.length;
    const head = this.takeHead();
    const drained =
      this.framing === CHUNKED
        ? this.client.write(`${head}${chunk.length.toString(16)}\r\n`, chunk, '\r\n')
        : head === ''
          ? this.client.write(chunk)
          : this.client.write(head, chunk);
    // A queued write still points into the upstream connection's read buffer.
    if (this.client.heldBuffer) this.connection?.giveUpReadBuffer();
    if (!drained) {
      // The rest of this read is parsed and buffered; the socket reads no more until 'drain'.
      this.connection?.pause();
      this.client.waitForDrain(this);
    }
    return true;
  }

  onResponseEnd(): void {
    this.releaseTarget();
    if (this.finished) return;
    const head = this.takeHead();
    const tail = this.framing === CHUNKED ? LAST_CHUNK : '';
    if (head !== '' || tail !== '') this.client.write(head + tail);
    this.finish(this.status);
  }

  onUpstreamError(error: Error, retryable: boolean): void {
    if (retryable && !this.retried && !this.finished && RETRYABLE_METHODS.has(this.method)) {
      this.retried = true;
      this.routed.pool.request(this, true);
      return;
    }
    this.releaseTarget();
    if (this.finished) return;
    const fields = {
      reqId: this.routed.reqId,
      upstream: this.routed.target.origin,
      err: error.message,
      code: (error as { code?: string }).code,
    };

    if (this.headWritten) {
      this.client.log.logger.warn(fields, 'upstream failed mid-response');
      // Cut first: the connection must not start a pipelined request behind a broken response.
      this.client.cut();
      this.finish(this.status);
      return;
    }
    this.client.log.logger.warn(fields, 'upstream request failed');
    this.pendingHead = null;
    const kind = upstreamFailure(error);
    this.status = FAILURES[kind].status;
    const page = failurePage(kind);
    this.bytes = page.length;
    this.client.write(this.failureHead(this.status, page.length), page);
    this.finish(this.status);
  }

  /** Ends the exchange when the client closed its connection before the response ended. */
  clientGone(): void {
    if (this.finished) return;
    this.finished = true;
    this.record(CLIENT_CLOSED_STATUS);
    this.releaseTarget();
    if (this.connection !== null) this.connection.abort();
    else this.routed.pool.cancel(this);
  }

  /** Resumes reading from the upstream once the client drained its buffer. */
  resumeUpstream(): void {
    this.connection?.resume();
  }

  private takeHead(): string {
    const head = this.pendingHead;
    if (head === null) return '';
    this.pendingHead = null;
    this.headWritten = true;
    return head;
  }

  private failureHead(status: number, length: number): string {
    let head =
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n` +
      'Content-Type: text/plain; charset=utf-8\r\n' +
      `Content-Length: ${length}\r\nCache-Control: no-store\r\n` +
      `x-request-id: ${this.routed.reqId}\r\nDate: ${httpDate()}\r\n`;
    if (this.routed.hsts !== undefined)
      head += `strict-transport-security: ${this.routed.hsts}\r\n`;
    if (this.client.closeAfterResponse) head += 'Connection: close\r\n';
    return `${head}\r\n`;
  }

  private finish(status: number): void {
    this.finished = true;
    this.record(status);
    this.client.exchangeDone(this);
  }

  /** Records the request once: route counters and the access line. */
  private record(status: number): void {
    const durationMs = performance.now() - this.start;
    const { route, reqId, client, host, target } = this.routed;
    route.stats.record(status, durationMs, this.bytes);
    const log = this.client.log;
    if (log.accessLog.enabled) {
      log.accessLog.write({
        reqId,
        site: route.site.name,
        route: route.name,
        method: this.method,
        host,
        path: this.url,
        status,
        durationMs,
        bytes: this.bytes,
        upstream: target.origin,
        client,
      });
    }
    log.done();
  }

  private releaseTarget(): void {
    if (this.released) return;
    this.released = true;
    this.routed.target.release();
  }
}

/** Returns `head` as Latin-1 bytes followed by `body`, in one new buffer. */
function withBody(head: string, body: Buffer): Buffer {
  const bytes = Buffer.allocUnsafe(head.length + body.length);
  bytes.write(head, 0, 'latin1');
  body.copy(bytes, head.length);
  return bytes;
}

let dateSecond = -1;
let dateText = '';

/** Returns the current time as an HTTP date, formatted once per second. */
function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(now).toUTCString();
  }
  return dateText;
}
