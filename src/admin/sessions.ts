import { randomBytes } from 'node:crypto';

/** Random bytes in a session id and in a CSRF token. */
export const SESSION_ID_BYTES = 32;
/** Maximum number of sessions. The oldest is dropped first, so repeated logins cannot grow memory. */
export const DEFAULT_MAX_SESSIONS = 100;

export interface AdminSession {
  /** Cookie value: 32 random bytes, base64url. */
  id: string;
  /** Token every POST form of this session must carry. */
  csrfToken: string;
  createdAt: number;
  /** Absolute end of the session: it is not extended by activity. */
  expiresAt: number;
  /** Socket peer that logged in, for the log. */
  clientAddress: string;
  /** One-time message shown on the next page view, such as the outcome of an action. */
  flash?: { kind: 'info' | 'error'; text: string };
}

export interface SessionStoreOptions {
  ttlMs: number;
  maxSessions?: number;
  now?: () => number;
}

/** Server-side admin sessions in memory. A restart logs everybody out, by design. */
export class SessionStore {
  private readonly sessions = new Map<string, AdminSession>();
  private readonly ttlMs: number;
  private readonly maxSessions: number;
  private readonly now: () => number;

  constructor(options: SessionStoreOptions) {
    this.ttlMs = options.ttlMs;
    this.maxSessions = options.maxSessions ?? DEFAULT_MAX_SESSIONS;
    this.now = options.now ?? Date.now;
  }

  create(clientAddress: string): AdminSession {
    this.removeExpired();
    while (this.sessions.size >= this.maxSessions) {
      const oldest = this.sessions.keys().next().value as string;
      this.sessions.delete(oldest);
    }

    const createdAt = this.now();
    const session: AdminSession = {
      id: randomToken(),
      csrfToken: randomToken(),
      createdAt,
      expiresAt: createdAt + this.ttlMs,
      clientAddress,
    };
    this.sessions.set(session.id, session);
    return session;
  }

  /** Returns the live session with `id`, or undefined when it is unknown or expired. */
  get(id: string): AdminSession | undefined {
    const session = this.sessions.get(id);
    if (session === undefined) return undefined;

    if (session.expiresAt <= this.now()) {
      this.sessions.delete(id);
      return undefined;
    }
    return session;
  }

  delete(id: string): void {
    this.sessions.delete(id);
  }

  get size(): number {
    return this.sessions.size;
  }

  private removeExpired(): void {
    const now = this.now();
    for (const [id, session] of this.sessions) {
      if (session.expiresAt <= now) this.sessions.delete(id);
    }
  }
}

function randomToken(): string {
  return randomBytes(SESSION_ID_BYTES).toString('base64url');
}
