import net from 'node:net';
import { EdgeError } from '../../errors.ts';
import { isStaleSocketError } from '../errors.ts';
import type { ParsedHead } from './response-head.ts';
import { ResponseParser, type ResponseSink } from './response-parser.ts';

/** A request sent over the raw client; the exchange implements it. */
export interface UpstreamRequest {
  readonly method: string;
  /** Request line and header lines, ending with the blank line. */
  readonly requestHead: string;
  /** The head followed by the whole body, sent in place of `requestHead` when set. */
  readonly requestBytes?: Buffer | null;
  /**
   * Wait for the response head and longest pause between body reads, in ms. Routes that share a
   * target share its pool, so each request brings its own route's limit.
   */
  readonly responseMs: number;
  /** Connection the request is on, set by the pool, null while queued or finished. */
  connection: UpstreamConnection | null;
  /** The final response head; returns false when the exchange aborted the connection. */
  onResponseHead(status: number, headers: string[]): boolean;
  /**
   * A piece of the decoded body; returns false when the exchange aborted the connection. `chunk`
   * is a view of the connection's read buffer, which the next read overwrites. An exchange whose
   * queued write still references it calls `connection.giveUpReadBuffer()`.
   */
  onResponseData(chunk: Buffer): boolean;
  onResponseEnd(): void;
  /** `retryable`: the request failed on a reused connection before any response byte. */
  onUpstreamError(error: Error, retryable: boolean): void;
}

/** Pool callbacks of a connection. */
export interface ConnectionOwner {
  /** The response ended; `reusable` when the connection may carry another request. */
  connectionReleased(connection: UpstreamConnection, reusable: boolean, hintMs: number): void;
  connectionClosed(connection: UpstreamConnection): void;
}

/** Timeouts and address of one pool's connections. */
export interface ConnectionSettings {
  host: string;
  port: number;
  connectMs: number;
  /** Wait for the response head, and the longest pause between body reads. */
  responseMs: number;
}

export const UPSTREAM_TIMEOUT = new EdgeError(
  'EDGE_UPSTREAM_TIMEOUT',
  'upstream sent no response head in time',
  { status: 504 },
);
const BODY_TIMEOUT_CODE = 'EDGE_UPSTREAM_BODY_TIMEOUT';
const CONNECT_TIMEOUT_CODE = 'EDGE_UPSTREAM_CONNECT_TIMEOUT';
const CLOSED_CODE = 'EDGE_UPSTREAM_CLOSED';

/** Size of each connection's read buffer, as Node's own reads use. */
const READ_BUFFER_BYTES = 64 * 1024;
/**
 * Body pieces up to this size are copied, not written by reference, when the client socket
 * already has bytes queued. A stalled client then keeps copies of the size it was sent, not one
 * read buffer per piece.
 */
export const COPY_WHEN_QUEUED_BYTES = 16 * 1024;

const CONNECTING = 0;
const ACTIVE = 1;
const IDLE = 2;
const CLOSED = 3;

/**
 * One keep-alive socket to an upstream. Its listeners and timers are created once per socket,
 * so a request on an open connection allocates none. The socket reads into one buffer that it
 * keeps, instead of a new buffer per read: no allocation, copy or garbage per read, and no
 * external memory that would make V8 run full collections under large responses.
 */
export class UpstreamConnection implements ResponseSink {
  readonly socket: net.Socket;
  request: UpstreamRequest | null = null;
  /** A response was read on this socket before, so the upstream may have closed it meanwhile. */
  reused = false;
  private readonly owner: ConnectionOwner;
  private readonly settings: ConnectionSettings;
  private readonly parser = new ResponseParser(this);
  private state = CONNECTING;
  private paused = false;
  private error: Error | null = null;
  private responseTimer: NodeJS.Timeout;
  private responseMs: number;
  private idleTimer: NodeJS.Timeout | null = null;
  private idleMs = 0;
  /** The buffer the next read fills; null after a write kept the previous one. */
  private readBuffer: Buffer | null = null;

  constructor(owner: ConnectionOwner, settings: ConnectionSettings) {
    this.owner = owner;
    this.settings = settings;
    this.responseMs = settings.responseMs;
    this.responseTimer = setTimeout(onResponseTimeout, settings.responseMs, this).unref();
    const socket = net.connect({
      host: settings.host,
      port: settings.port,
      noDelay: true,
      onread: {
        buffer: () => this.nextReadBuffer(),
        callback: (length: number, buffer: Uint8Array) => this.read(length, buffer),
      },
    });
    (socket as TaggedSocket)[CONNECTION] = this;
    socket.setTimeout(settings.connectMs);
    socket.on('connect', onConnect);
    socket.on('timeout', onConnectTimeout);
    socket.on('end', onEnd);
    socket.on('error', onError);
    socket.on('close', onClose);
    this.socket = socket;
  }

  /** Writes `request` on this connection: the only write per request. */
  send(request: UpstreamRequest): void {
    this.request = request;
    request.connection = this;
    if (this.state === IDLE) this.state = ACTIVE;
    this.parser.start(request.method);
    if (request.responseMs === this.responseMs) {
      this.responseTimer.refresh();
    } else {
      clearTimeout(this.responseTimer);
      this.responseMs = request.responseMs;
      this.responseTimer = setTimeout(onResponseTimeout, request.responseMs, this).unref();
    }
    const bytes = request.requestBytes;
    if (bytes === undefined || bytes === null) this.socket.write(request.requestHead, 'latin1');
    else this.socket.write(bytes);
  }

  /** Stops reading from the upstream while the client catches up. */
  pause(): void {
    this.paused = true;
    this.socket.pause();
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.responseTimer.refresh();
    this.socket.resume();
  }

  /**
   * Leaves the current read buffer to a queued write that references it, so the next read goes
   * to a new buffer.
   */
  giveUpReadBuffer(): void {
    this.readBuffer = null;
  }

  /** Drops the request and closes the socket: it is never reused after an abort. */
  abort(): void {
    const request = this.request;
    this.request = null;
    if (request !== null) request.connection = null;
    this.socket.destroy();
  }

  /** Closes the socket; a request on it fails with `error`. */
  destroy(error: Error): void {
    this.error ??= error;
    this.socket.destroy();
  }

  /** Marks the connection idle and (re)starts its idle timer. */
  idle(idleMs: number): void {
    this.state = IDLE;
    if (this.idleTimer === null || this.idleMs !== idleMs) {
      if (this.idleTimer !== null) clearTimeout(this.idleTimer);
      this.idleMs = idleMs;
      this.idleTimer = setTimeout(onIdleTimeout, idleMs, this).unref();
    } else {
      this.idleTimer.refresh();
    }
  }

  get isIdle(): boolean {
    return this.state === IDLE;
  }

  onResponseHead(head: ParsedHead): boolean {
    this.responseTimer.refresh();
    return this.request !== null && this.request.onResponseHead(head.status, head.headers);
  }

  onResponseBody(chunk: Buffer): boolean {
    this.responseTimer.refresh();
    return this.request !== null && this.request.onResponseData(chunk);
  }

  connected(): void {
    this.socket.setTimeout(0);
    if (this.state === CONNECTING) this.state = this.request === null ? IDLE : ACTIVE;
    if (this.request !== null) this.responseTimer.refresh();
  }

  connectTimedOut(): void {
    if (this.state !== CONNECTING) return;
    const error = new EdgeError(CONNECT_TIMEOUT_CODE, 'connecting to the upstream timed out', {
      status: 504,
      context: { host: this.settings.host, port: this.settings.port },
    });
    this.destroy(error);
  }

  /** Returns the buffer for the next read, a new one when a write kept the last. */
  private nextReadBuffer(): Buffer {
    this.readBuffer ??= Buffer.allocUnsafeSlow(READ_BUFFER_BYTES);
    return this.readBuffer;
  }

  /** Handles `length` bytes read into `buffer`; returns false to stop reading (pause). */
  private read(length: number, buffer: Uint8Array): boolean {
    this.received((buffer as Buffer).subarray(0, length));
    return !this.paused;
  }

  received(chunk: Buffer): void {
    if (this.request === null) {
      // Bytes on an idle socket belong to no request: the connection is out of step.
      this.socket.destroy();
      return;
    }
    try {
      this.parser.execute(chunk);
    } catch (error) {
      this.destroy(error as Error);
      return;
    }
    if (this.parser.done && this.request !== null) this.complete(!this.parser.trailingBytes);
  }

  ended(): void {
    if (this.request !== null && this.parser.readsUntilClose && this.parser.endOfInput())
      this.complete(false);
  }

  responseTimedOut(): void {
    if (this.state !== ACTIVE || this.request === null || this.paused) return;
    if (this.parser.head === undefined) {
      this.destroy(UPSTREAM_TIMEOUT);
      return;
    }
    const error = new EdgeError(BODY_TIMEOUT_CODE, 'upstream body stalled', { status: 504 });
    this.destroy(error);
  }

  idleTimedOut(): void {
    if (this.state === IDLE) this.socket.destroy();
  }

  closed(): void {
    this.state = CLOSED;
    clearTimeout(this.responseTimer);
    if (this.idleTimer !== null) clearTimeout(this.idleTimer);
    const request = this.request;
    this.request = null;
    this.owner.connectionClosed(this);
    if (request === null) return;

    request.connection = null;
    const error =
      this.error ?? new EdgeError(CLOSED_CODE, 'upstream closed the connection', { status: 502 });
    const retryable = this.reused && !this.parser.started && isStaleSocketError(error);
    request.onUpstreamError(error, retryable);
  }

  private complete(reusable: boolean): void {
    const request = this.request!;
    const head = this.parser.head!;
    this.request = null;
    request.connection = null;
    if (this.paused) this.resume();

    const idleMs = head.keepAliveTimeoutMs;
    this.owner.connectionReleased(this, reusable && head.keepAlive, idleMs);
    request.onResponseEnd();
  }
}

const CONNECTION = Symbol('upstreamConnection');

type TaggedSocket = net.Socket & { [CONNECTION]: UpstreamConnection };

function onConnect(this: TaggedSocket): void {
  this[CONNECTION].connected();
}

function onConnectTimeout(this: TaggedSocket): void {
  this[CONNECTION].connectTimedOut();
}

function onEnd(this: TaggedSocket): void {
  this[CONNECTION].ended();
}

function onError(this: TaggedSocket, error: Error): void {
  this[CONNECTION].destroy(error);
}

function onClose(this: TaggedSocket): void {
  this[CONNECTION].closed();
}

function onResponseTimeout(connection: UpstreamConnection): void {
  connection.responseTimedOut();
}

function onIdleTimeout(connection: UpstreamConnection): void {
  connection.idleTimedOut();
}
