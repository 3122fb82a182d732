import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { ExchangeLog } from '../exchange.ts';
import { DirectConnection, type DirectOwner } from './connection.ts';
import type { DirectRoute } from './exchange.ts';
import type { DirectRequestHead } from './request-head.ts';

/** Routes a request head for the direct path; undefined leaves it to Node's HTTP server. */
export type DirectRouter = (
  head: DirectRequestHead,
  socket: Socket,
  secure: boolean,
) => DirectRoute | undefined;

export interface DirectPathOptions {
  log: ExchangeLog;
  router: DirectRouter;
  /** Wait for the first request of a connection, in ms. */
  firstRequestMs: number;
  /** Idle time between requests, in ms. */
  keepAliveMs: number;
}

/**
 * The direct data path of both listeners. Node's HTTP server allocates a request, a response
 * and their streams per request, which costs about as much CPU as forwarding it. Connections
 * start on the direct path, which reads plain bodyless requests to proxied targets itself and
 * hands the connection to Node's server at the first request it does not take.
 */
export class DirectPath {
  private readonly options: DirectPathOptions;
  private readonly connections = new Set<DirectConnection>();
  closing = false;

  constructor(options: DirectPathOptions) {
    this.options = options;
  }

  /**
   * Puts the direct path in front of an HTTP server: its connections (its TLS sessions, for an
   * HTTPS server) come here first, and go to the server's own listener when handed off.
   */
  attach(server: Server, secure: boolean): void {
    // An HTTPS server runs its HTTP connection listener once the TLS handshake is done.
    const event = secure ? 'secureConnection' : 'connection';
    const nodeListeners = server.listeners(event) as ((socket: Socket) => void)[];
    server.removeAllListeners(event);
    const listener = new DirectListener(this, this.options, server, nodeListeners, secure);
    server.on(event, (socket: Socket) => this.accept(socket, listener));
  }

  /** Closes the connections that wait between requests; the others close after their response. */
  closeIdleConnections(): void {
    this.closing = true;
    for (const connection of this.connections) connection.closeIfIdle();
  }

  closeAllConnections(): void {
    for (const connection of this.connections) connection.close();
  }

  forget(connection: DirectConnection): void {
    this.connections.delete(connection);
  }

  private accept(socket: Socket, listener: DirectListener): void {
    if (this.closing) {
      listener.handOff(socket, undefined);
      return;
    }
    this.connections.add(new DirectConnection(socket, listener));
  }
}

/** The direct path's view of one listener: how it routes and whom it hands connections to. */
class DirectListener implements DirectOwner {
  readonly log: ExchangeLog;
  readonly firstRequestMs: number;
  readonly keepAliveMs: number;
  private readonly path: DirectPath;
  private readonly router: DirectRouter;
  private readonly server: Server;
  private readonly nodeListeners: ((socket: Socket) => void)[];
  private readonly secure: boolean;

  constructor(
    path: DirectPath,
    options: DirectPathOptions,
    server: Server,
    nodeListeners: ((socket: Socket) => void)[],
    secure: boolean,
  ) {
    this.path = path;
    this.log = options.log;
    this.router = options.router;
    this.firstRequestMs = options.firstRequestMs;
    this.keepAliveMs = options.keepAliveMs;
    this.server = server;
    this.nodeListeners = nodeListeners;
    this.secure = secure;
  }

  get closing(): boolean {
    return this.path.closing;
  }

  route(head: DirectRequestHead, socket: Socket): DirectRoute | undefined {
    return this.router(head, socket, this.secure);
  }

  handOff(socket: Socket, unread: Buffer | undefined): void {
    // Unread bytes go back to the socket's stream: Node's parser reads them before anything new.
    if (unread !== undefined) socket.unshift(unread);
    for (const listener of this.nodeListeners) listener.call(this.server, socket);
  }

  connectionClosed(connection: DirectConnection): void {
    this.path.forget(connection);
  }
}
