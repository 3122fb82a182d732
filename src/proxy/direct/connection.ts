import { Socket } from 'node:net';
import type { ExchangeLog } from '../exchange.ts';
import { COPY_WHEN_QUEUED_BYTES } from '../upstream/connection.ts';
import { DirectExchange, type DirectClient, type DirectRoute } from './exchange.ts';
import { readRequestHead, type DirectRequestHead } from './request-head.ts';

/** Unread client bytes held while a response is running, before the socket is paused. */
const MAX_BUFFERED_BYTES = 64 * 1024;
/** Bodies up to this size leave in one write with the head, copied into one string. */
const SINGLE_WRITE_BYTES = 4 * 1024;

/** The listener a connection belongs to, as the connection uses it. */
export interface DirectOwner {
  readonly log: ExchangeLog;
  /** The edge is shutting down: responses close their connections. */
  readonly closing: boolean;
  /** Wait for the first request, in ms. */
  readonly firstRequestMs: number;
  /** Idle time between requests after which the connection is closed, in ms. */
  readonly keepAliveMs: number;
  /** Routes a request head, or returns undefined when Node's server must handle it. */
  route(head: DirectRequestHead, socket: Socket): DirectRoute | undefined;
  /** Gives the socket to Node's HTTP server, with `unread` as the next bytes it reads. */
  handOff(socket: Socket, unread: Buffer | undefined): void;
  connectionClosed(connection: DirectConnection): void;
}

const CONNECTION = Symbol('directConnection');
type TaggedSocket = Socket & { [CONNECTION]?: DirectConnection };

/**
 * The socket fields behind `net.connect`'s `onread` option: with them set, a read goes into the
 * given buffer and to the callback instead of into a new 64 KiB allocation and a 'data' event.
 * Node offers no such option for the sockets a server accepts, so the fields are looked up by name
 * on a probe socket. On a Node without them, the direct path reads through 'data' events.
 * NOTE: these are Node internals, read on Node 20. A test of the direct path checks that its
 * sockets have no 'data' listener, which fails when they are missing.
 */
interface UserBufferFields {
  buffer: symbol;
  callback: symbol;
  generator: symbol;
}

const userBuffer = findUserBufferFields();
/**
 * The one read buffer of all direct connections. Each read is handled before the next one starts,
 * and a connection copies the bytes it keeps past its read.
 */
const READ_BUFFER = userBuffer === undefined ? undefined : Buffer.allocUnsafeSlow(64 * 1024);

type ReadCallback = (this: Socket, length: number, buffer: Buffer) => boolean;
type UserBufferSocket = Socket & Record<symbol, Buffer | ReadCallback | null>;
interface UserBufferHandle {
  useUserBuffer?: (buffer: Buffer) => void;
}

function findUserBufferFields(): UserBufferFields | undefined {
  const probe = new Socket();
  const fields = new Map(Object.getOwnPropertySymbols(probe).map((key) => [key.description, key]));
  probe.destroy();
  const buffer = fields.get('kBuffer');
  const callback = fields.get('kBufferCb');
  const generator = fields.get('kBufferGen');
  if (buffer === undefined || callback === undefined || generator === undefined) return undefined;
  return { buffer, callback, generator };
}

/**
 * Makes the socket read into READ_BUFFER and call `onRead`, when this Node allows it. Returns
 * false when the socket must be read through 'data' events.
 */
function readIntoSharedBuffer(socket: Socket): boolean {
  const handle = (socket as unknown as { _handle?: UserBufferHandle | null })._handle;
  if (userBuffer === undefined || READ_BUFFER === undefined) return false;
  if (typeof handle?.useUserBuffer !== 'function') return false;
  const fields = socket as UserBufferSocket;
  if (fields[userBuffer.generator] !== null) return false;
  fields[userBuffer.buffer] = READ_BUFFER;
  fields[userBuffer.callback] = onRead;
  handle.useUserBuffer(READ_BUFFER);
  return true;
}

/**
 * Turns a socket that reads into READ_BUFFER back into one that emits each read as a new Buffer,
 * for Node's HTTP server. The socket's native handle keeps the shared buffer, so each read is
 * copied out of it.
 */
function readIntoNewBuffers(socket: Socket): void {
  (socket as UserBufferSocket)[userBuffer!.callback] = pushCopy;
}

/**
 * A client connection on the direct path. It reads request heads itself and forwards the plain
 * bodyless requests that the site handler routes to a proxied target. At the first request it
 * does not take (a body, an upgrade, a static file, an error page, a partial head), it gives the
 * socket and the unread bytes to Node's HTTP server for the rest of the connection's life.
 */
export class DirectConnection implements DirectClient {
  readonly socket: Socket;
  readonly log: ExchangeLog;
  private readonly owner: DirectOwner;
  private unread: Buffer | null = null;
  private exchange: DirectExchange | null = null;
  private drainWaiter: DirectExchange | null = null;
  /** The last write left a Buffer it was given queued in the socket. */
  heldBuffer = false;
  /**
   * TLS encrypts a write's bytes as soon as the socket takes them, so only a write queued behind
   * another one, or corked, still points into its Buffer. TCP sends from the Buffer itself.
   */
  private readonly encrypted: boolean;
  /** Whether reads arrive in READ_BUFFER through `onRead` instead of as 'data' events. */
  private readonly sharedBuffer: boolean;
  private closeRequested = false;
  private paused = false;
  private ended = false;
  /** Closes the connection when no request comes: first the first-request wait, then keep-alive. */
  private timer: NodeJS.Timeout;
  private keepAliveTimer = false;

  constructor(socket: Socket, owner: DirectOwner) {
    this.socket = socket;
    this.owner = owner;
    this.log = owner.log;
    this.encrypted = (socket as { encrypted?: boolean }).encrypted === true;
    (socket as TaggedSocket)[CONNECTION] = this;
    socket.setNoDelay(true);
    this.sharedBuffer = readIntoSharedBuffer(socket);
    if (!this.sharedBuffer) socket.on('data', onData);
    socket.on('drain', onDrain);
    socket.on('error', onError);
    socket.on('close', onClose);
    socket.on('end', onEnd);
    this.timer = setTimeout(onIdleTimeout, owner.firstRequestMs, this).unref();
    // A TLS socket may have read the first request with the handshake, before the direct path
    // took it, and buffered it in its stream.
    if (this.sharedBuffer && socket.readableLength > 0) {
      const early = socket.read() as Buffer | null;
      if (early !== null) this.received(early);
    }
  }

  get closeAfterResponse(): boolean {
    return this.closeRequested || this.owner.closing;
  }

  /** True between requests, when closing the connection loses nothing. */
  get idle(): boolean {
    return this.exchange === null && !this.ended;
  }

  received(chunk: Buffer): void {
    this.unread = this.unread === null ? chunk : Buffer.concat([this.unread, chunk]);
    if (this.exchange === null) {
      this.next();
    } else if (this.unread.length > MAX_BUFFERED_BYTES && !this.paused) {
      this.paused = true;
      this.socket.pause();
    }
  }

  /** Takes a read in READ_BUFFER. The bytes the connection keeps past this call are copied out. */
  receivedShared(length: number): void {
    this.received(READ_BUFFER!.subarray(0, length));
    const unread = this.unread;
    if (unread !== null && unread.buffer === READ_BUFFER!.buffer) this.unread = Buffer.from(unread);
  }

  /**
   * Writes response bytes. Strings are written as Latin-1, so each character becomes the byte the
   * upstream sent: header values above 127 pass unchanged, as on Node's path.
   */
  write(data: string | Buffer, more?: string | Buffer, last?: string): boolean {
    const socket = this.socket;
    this.heldBuffer = false;
    if (more === undefined) {
      if (typeof data === 'string' || data.length <= SINGLE_WRITE_BYTES) {
        // A small Buffer is written as a string copy, so the caller may reuse its memory.
        return socket.write(typeof data === 'string' ? data : data.toString('latin1'), 'latin1');
      }
      const queued = socket.writableLength > 0 || socket.writableCorked > 0;
      if (queued && data.length <= COPY_WHEN_QUEUED_BYTES) return socket.write(Buffer.from(data));
      const drained = socket.write(data);
      this.heldBuffer = this.encrypted ? queued : socket.writableLength > 0;
      return drained;
    }
    if (typeof data === 'string' && more.length <= SINGLE_WRITE_BYTES) {
      // One string and one write: a small response costs no writev and no corked list.
      const body = typeof more === 'string' ? more : more.toString('latin1');
      return socket.write(data + body + (last ?? ''), 'latin1');
    }
    const queued = socket.writableLength > 0 || socket.writableCorked > 0;
    const copy = queued && typeof more !== 'string' && more.length <= COPY_WHEN_QUEUED_BYTES;
    socket.cork();
    socket.write(data, 'latin1');
    socket.write(copy ? Buffer.from(more) : more, 'latin1');
    if (last !== undefined) socket.write(last, 'latin1');
    socket.uncork();
    this.heldBuffer =
      typeof more !== 'string' && !copy && (this.encrypted ? queued : socket.writableLength > 0);
    return socket.writableLength < socket.writableHighWaterMark;
  }

  waitForDrain(exchange: DirectExchange): void {
    this.drainWaiter = exchange;
  }

  drained(): void {
    const waiter = this.drainWaiter;
    this.drainWaiter = null;
    waiter?.resumeUpstream();
  }

  cut(): void {
    this.ended = true;
    this.socket.destroy();
  }

  exchangeDone(exchange: DirectExchange): void {
    if (this.exchange !== exchange) return;
    this.exchange = null;
    this.drainWaiter = null;
    if (this.ended) return;
    if (this.closeAfterResponse) {
      this.ended = true;
      this.socket.end();
      return;
    }
    if (this.paused) {
      this.paused = false;
      this.socket.resume();
    }
    if (this.keepAliveTimer) {
      this.timer.refresh();
    } else {
      clearTimeout(this.timer);
      this.timer = setTimeout(onIdleTimeout, this.owner.keepAliveMs, this).unref();
      this.keepAliveTimer = true;
    }
    this.next();
  }

  /** Closes an idle connection; a busy one closes after its response. */
  closeIfIdle(): void {
    if (this.idle) this.close();
  }

  close(): void {
    this.ended = true;
    this.socket.destroy();
  }

  closed(): void {
    this.ended = true;
    clearTimeout(this.timer);
    const exchange = this.exchange;
    this.exchange = null;
    exchange?.clientGone();
    this.owner.connectionClosed(this);
  }

  /**
   * Ends the connection when the client closed its side. Node's server, with its default
   * `httpAllowHalfOpen: false`, drops a running response then, and so does the direct path.
   */
  clientEnded(): void {
    this.ended = true;
    const exchange = this.exchange;
    this.exchange = null;
    exchange?.clientGone();
    this.socket.end();
  }

  idleTimeout(): void {
    if (this.exchange === null) this.close();
  }

  /** Starts the next request in the unread bytes, or waits for more. */
  private next(): void {
    const unread = this.unread;
    if (unread === null || this.ended) return;

    const head = readRequestHead(unread, 0);
    // A body that has not arrived whole with its head is left to Node's server, which has the
    // timeouts and the 100-continue handling for slow uploads.
    const complete = typeof head === 'object' && head.end + head.bodyLength <= unread.length;
    const routed = complete ? this.owner.route(head, this.socket) : undefined;
    if (routed === undefined || typeof head !== 'object') {
      this.handOff();
      return;
    }

    const end = head.end + head.bodyLength;
    // The body is copied by the exchange before this call returns, so a view suffices.
    const body = head.bodyLength > 0 ? unread.subarray(head.end, end) : null;
    this.unread = end < unread.length ? unread.subarray(end) : null;
    if (head.close) this.closeRequested = true;
    const exchange = new DirectExchange(this, routed, head, body);
    this.exchange = exchange;
    exchange.dispatch();
  }

  private handOff(): void {
    const socket = this.socket;
    clearTimeout(this.timer);
    socket.off('data', onData);
    socket.off('drain', onDrain);
    socket.off('error', onError);
    socket.off('close', onClose);
    socket.off('end', onEnd);
    delete (socket as TaggedSocket)[CONNECTION];
    this.ended = true;
    this.owner.connectionClosed(this);
    let unread = this.unread ?? undefined;
    this.unread = null;
    if (this.sharedBuffer) {
      readIntoNewBuffers(socket);
      if (unread?.buffer === READ_BUFFER!.buffer) unread = Buffer.from(unread);
    }
    this.owner.handOff(socket, unread);
  }
}

function connectionOf(socket: Socket): DirectConnection | undefined {
  return (socket as TaggedSocket)[CONNECTION];
}

function onData(this: Socket, chunk: Buffer): void {
  connectionOf(this)?.received(chunk);
}

function onRead(this: Socket, length: number): boolean {
  connectionOf(this)?.receivedShared(length);
  // The connection pauses the socket itself when it has too many unread bytes.
  return true;
}

function pushCopy(this: Socket, length: number, buffer: Buffer): boolean {
  return this.push(Buffer.from(buffer.subarray(0, length)));
}

function onDrain(this: Socket): void {
  connectionOf(this)?.drained();
}

function onError(): void {
  // 'close' follows every socket error; the exchange is ended there.
}

function onEnd(this: Socket): void {
  connectionOf(this)?.clientEnded();
}

function onClose(this: Socket): void {
  connectionOf(this)?.closed();
}

function onIdleTimeout(connection: DirectConnection): void {
  connection.idleTimeout();
}
