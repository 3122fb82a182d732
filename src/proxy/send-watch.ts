import type { Socket } from 'node:net';
import type { Logger } from '../log.ts';

/** Maximum interval between two checks of the watched sockets, in ms. */
const MAX_CHECK_INTERVAL_MS = 5_000;
/** Minimum interval between two checks, in ms. */
const MIN_CHECK_INTERVAL_MS = 50;

interface SendState {
  /** Bytes the socket had handed to the system at the last look. */
  dispatched: number;
  /** When the socket was last seen making progress with bytes waiting, or 0. */
  since: number;
}

/**
 * Closes client connections that stop reading: a socket with response bytes waiting that hands
 * none of them to the system for `sendMs` is destroyed, like nginx's `send_timeout`. Node only
 * reports a write as done once the system has taken all of it, so progress is seen per write: a
 * client must take each write (at most 64 KiB) within `sendMs`.
 */
export class SendWatch {
  private readonly sendMs: number;
  private readonly logger: Logger;
  private readonly now: () => number;
  private readonly sockets = new Map<Socket, SendState>();
  private timer: NodeJS.Timeout | undefined;

  constructor(sendMs: number, logger: Logger, now: () => number = Date.now) {
    this.sendMs = sendMs;
    this.logger = logger;
    this.now = now;
  }

  /** Watches a client socket until it closes. Does nothing when the timeout is 0. */
  add(socket: Socket): void {
    if (this.sendMs <= 0) return;
    this.sockets.set(socket, { dispatched: 0, since: 0 });
    socket.once('close', () => this.sockets.delete(socket));
    if (this.timer === undefined) {
      const interval = Math.min(
        Math.max(Math.floor(this.sendMs / 4), MIN_CHECK_INTERVAL_MS),
        MAX_CHECK_INTERVAL_MS,
      );
      this.timer = setInterval(() => this.check(), interval).unref();
    }
  }

  /** Destroys the sockets that made no progress for `sendMs` with bytes waiting. */
  check(): void {
    const now = this.now();
    for (const [socket, state] of this.sockets) {
      const waiting = socket.writableLength;
      if (waiting === 0 || socket.destroyed) {
        state.since = 0;
        continue;
      }
      // bytesWritten counts the bytes still waiting too, so the difference only grows when the
      // system takes some.
      const dispatched = socket.bytesWritten - waiting;
      if (state.since === 0 || dispatched !== state.dispatched) {
        state.dispatched = dispatched;
        state.since = now;
        continue;
      }
      if (now - state.since < this.sendMs) continue;

      this.logger.info(
        { client: socket.remoteAddress, waitingBytes: waiting, sendMs: this.sendMs },
        'client stopped reading; connection closed',
      );
      this.sockets.delete(socket);
      socket.destroy();
    }
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
