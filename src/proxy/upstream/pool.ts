import { EdgeError } from '../../errors.ts';
import {
  UpstreamConnection,
  type ConnectionOwner,
  type ConnectionSettings,
  type UpstreamRequest,
} from './connection.ts';

/** Time an idle connection is retired before the end of an upstream's `Keep-Alive: timeout`. */
export const KEEP_ALIVE_HINT_MARGIN_MS = 1_000;

/** Limits of one pool, from the route configuration. */
export interface PoolSettings extends ConnectionSettings {
  maxConnections: number;
  /** Idle time after which a connection is closed, unless the upstream announced less. */
  keepAliveMs: number;
}

const POOL_DESTROYED = new EdgeError('EDGE_UPSTREAM_POOL_DESTROYED', 'upstream pool was closed', {
  status: 502,
});

/**
 * The raw client's connections to one upstream origin: at most `maxConnections` sockets, the most
 * recently used idle one first, and a FIFO queue of requests while all are busy.
 */
export class UpstreamPool implements ConnectionOwner {
  readonly settings: PoolSettings;
  /** Open connections, idle or busy. */
  private readonly connections = new Set<UpstreamConnection>();
  /** Idle connections, the most recently used last. */
  private readonly idleConnections: UpstreamConnection[] = [];
  private readonly queue: UpstreamRequest[] = [];
  private closing = false;
  private destroyed = false;
  private closeWaiters: (() => void)[] = [];

  constructor(settings: PoolSettings) {
    this.settings = settings;
  }

  get closed(): boolean {
    return this.closing;
  }

  get size(): number {
    return this.connections.size;
  }

  /** Sends `request` on an idle connection, a new one, or queues it. `fresh` skips idle ones. */
  request(request: UpstreamRequest, fresh = false): void {
    if (this.destroyed) {
      request.onUpstreamError(POOL_DESTROYED, false);
      return;
    }
    const idle = fresh ? undefined : this.idleConnections.pop();
    if (idle !== undefined) {
      idle.send(request);
    } else if (this.connections.size < this.settings.maxConnections) {
      this.open().send(request);
    } else {
      this.queue.push(request);
    }
  }

  /** Removes a request that is still waiting for a connection. */
  cancel(request: UpstreamRequest): void {
    const index = this.queue.indexOf(request);
    if (index !== -1) this.queue.splice(index, 1);
  }

  connectionReleased(connection: UpstreamConnection, reusable: boolean, hintMs: number): void {
    const idleMs = this.idleTimeout(hintMs);
    if (!reusable || idleMs <= 0 || (this.closing && this.queue.length === 0)) {
      connection.socket.destroy();
      return;
    }
    connection.reused = true;
    const next = this.queue.shift();
    if (next !== undefined) {
      connection.send(next);
      return;
    }
    connection.idle(idleMs);
    this.idleConnections.push(connection);
  }

  connectionClosed(connection: UpstreamConnection): void {
    this.connections.delete(connection);
    const index = this.idleConnections.indexOf(connection);
    if (index !== -1) this.idleConnections.splice(index, 1);

    // A freed slot goes to the oldest waiting request.
    const next = this.queue.shift();
    if (next !== undefined) this.open().send(next);
    else if (this.connections.size === 0) this.wakeCloseWaiters();
  }

  /** Closes idle connections now and the others once their responses end. */
  close(): Promise<void> {
    this.closing = true;
    for (const connection of this.idleConnections.splice(0)) connection.socket.destroy();
    return this.whenEmpty();
  }

  /** Closes every connection now; running and queued requests fail. */
  destroy(): Promise<void> {
    this.closing = true;
    this.destroyed = true;
    const queued = this.queue.splice(0);
    this.idleConnections.length = 0;
    for (const connection of this.connections) connection.destroy(POOL_DESTROYED);
    for (const request of queued) request.onUpstreamError(POOL_DESTROYED, false);
    return this.whenEmpty();
  }

  private open(): UpstreamConnection {
    const connection = new UpstreamConnection(this, this.settings);
    this.connections.add(connection);
    return connection;
  }

  /** Returns the idle time for a connection: the configured one, or less when hinted. */
  private idleTimeout(hintMs: number): number {
    const configured = this.settings.keepAliveMs;
    if (hintMs < 0) return configured;
    const hinted = hintMs - KEEP_ALIVE_HINT_MARGIN_MS;
    return hinted < configured ? hinted : configured;
  }

  private whenEmpty(): Promise<void> {
    if (this.connections.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.closeWaiters.push(resolve));
  }

  private wakeCloseWaiters(): void {
    const waiters = this.closeWaiters;
    this.closeWaiters = [];
    for (const wake of waiters) wake();
  }
}
