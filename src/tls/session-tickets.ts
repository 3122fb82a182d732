import type { SecureContext, Server } from 'node:tls';
import { types } from 'node:util';
import { fileURLToPath } from 'node:url';
import { loadAddon } from '../native.ts';

/** Path of the compiled addon; src/tls/ and dist/tls/ both sit two levels below native/. */
export const SESSION_TICKETS_ADDON = fileURLToPath(
  new URL('../../native/build/session-tickets.node', import.meta.url),
);

/**
 * TLS 1.3 session tickets sent after each full handshake. OpenSSL's default is two, and each
 * costs a key derivation, an encryption of the session and a record: about 5% of the CPU of a
 * full handshake. Go's crypto/tls, and so Caddy, send one. Clients that use a ticket once, as
 * browsers do, resume one later connection per full handshake instead of two, because Node's
 * TLS server sends no new ticket on a resumed connection.
 */
export const SESSION_TICKETS = 1;
/** OpenSSL's count, in effect where the addon does not load. */
export const OPENSSL_DEFAULT_SESSION_TICKETS = 2;

type SetSessionTickets = (external: unknown, count: number) => number;

/** Sets the ticket count on the contexts of TLS servers, through the addon when it loads. */
export class SessionTickets {
  private set: SetSessionTickets | undefined;
  private unavailable: string | undefined;

  constructor(path: string = SESSION_TICKETS_ADDON) {
    const loaded = loadAddon<SetSessionTickets>(path, 'setSessionTickets');
    this.set = loaded.fn;
    this.unavailable = loaded.reason;
  }

  /** Tickets each full handshake gets: SESSION_TICKETS, or OpenSSL's two without the addon. */
  get count(): number {
    return this.set ? SESSION_TICKETS : OPENSSL_DEFAULT_SESSION_TICKETS;
  }

  /** Reason the count is OpenSSL's default, or undefined when the addon sets it. */
  get reason(): string | undefined {
    return this.unavailable;
  }

  /**
   * Applies the count to the server's own context, the one it holds for the `cert` and `key` it
   * was created with. OpenSSL copies the count into each connection when the connection is
   * created, before the SNI callback runs, so the contexts the SNI callback hands over do not
   * change it. Call it again after each `setSecureContext`, which replaces that context.
   */
  applyTo(server: Server): void {
    const context = (server as Server & { _sharedCreds?: SecureContext })._sharedCreds;
    const external = (context?.context as { _external?: unknown } | undefined)?._external;
    if (this.set === undefined) return;
    if (!types.isExternal(external)) {
      // Node keeps the server's context in _sharedCreds and the SSL_CTX in its _external; a
      // Node without them leaves OpenSSL's default in place.
      this.set = undefined;
      this.unavailable = 'this Node version has no SSL_CTX External on tls.Server';
      return;
    }
    this.set(external, SESSION_TICKETS);
  }
}
