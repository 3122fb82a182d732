import { createHmac, randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Logger } from '../log.ts';
import { readCookie } from './http.ts';
import type { LoginRateLimiter } from './login-limiter.ts';
import { verifyPassword, type PasswordHash } from './password.ts';
import type { AdminSession, SessionStore } from './sessions.ts';

/** The `__Secure-` prefix makes browsers drop the cookie unless it was set with Secure over TLS. */
export const SESSION_COOKIE = '__Secure-edge_session';
/** How long a verified Basic credential is remembered, so each scrape does not pay for scrypt. */
export const BASIC_AUTH_CACHE_MS = 60_000;
const MAX_CACHED_CREDENTIALS = 16;

export type LoginResult =
  | { ok: true; session: AdminSession }
  | { ok: false; reason: 'invalid' }
  | { ok: false; reason: 'rate-limited'; retryAfterMs: number };

export type BasicAuthResult = 'ok' | 'absent' | 'invalid' | { retryAfterMs: number };

export interface AdminAuthOptions {
  /** Undefined when no valid hash is configured: every login then fails. */
  passwordHash: PasswordHash | undefined;
  sessions: SessionStore;
  limiter: LoginRateLimiter;
  logger: Logger;
  sessionTtlMs: number;
  now?: () => number;
}

/**
 * Password check, login sessions and HTTP Basic credentials for the admin endpoints. Every
 * decision uses the socket peer address passed in by the caller, never a forwarding header.
 */
export class AdminAuth {
  private readonly options: AdminAuthOptions;
  private readonly now: () => number;
  /** HMAC key for remembered Basic credentials, so the cache never stores a password. */
  private readonly cacheKey = randomBytes(32);
  private readonly verifiedCredentials = new Map<string, number>();

  constructor(options: AdminAuthOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
  }

  get enabled(): boolean {
    return this.options.passwordHash !== undefined;
  }

  /** Returns the session named by the request's cookie, or undefined. */
  sessionOf(req: IncomingMessage): AdminSession | undefined {
    const id = readCookie(req, SESSION_COOKIE);
    return id === undefined || id === '' ? undefined : this.options.sessions.get(id);
  }

  async login(clientAddress: string, password: string): Promise<LoginResult> {
    const retryAfterMs = this.options.limiter.acquireAttempt(clientAddress);
    if (retryAfterMs > 0) {
      this.options.logger.debug({ clientAddress, retryAfterMs }, 'admin login rate-limited');
      return { ok: false, reason: 'rate-limited', retryAfterMs };
    }

    if (!(await this.checkPassword(password))) {
      this.options.logger.warn({ clientAddress }, 'admin login failed');
      return { ok: false, reason: 'invalid' };
    }

    this.options.limiter.recordSuccess(clientAddress);
    const session = this.options.sessions.create(clientAddress);
    this.options.logger.info({ clientAddress }, 'admin logged in');
    return { ok: true, session };
  }

  logout(session: AdminSession): void {
    this.options.sessions.delete(session.id);
    this.options.logger.info({ clientAddress: session.clientAddress }, 'admin logged out');
  }

  /**
   * Checks an `Authorization: Basic` header (any user name, the admin password) for monitors such
   * as Prometheus that cannot log in with a form. Failures count against the login rate limit.
   */
  async checkBasic(req: IncomingMessage, clientAddress: string): Promise<BasicAuthResult> {
    const header = req.headers.authorization;
    if (header === undefined || !/^basic\s+/i.test(header)) return 'absent';

    // A blocked client stays blocked even with a credential verified before the block.
    const blockedMs = this.options.limiter.blockedFor(clientAddress);
    if (blockedMs > 0) return { retryAfterMs: blockedMs };

    const cacheId = createHmac('sha256', this.cacheKey).update(header).digest('base64');
    if ((this.verifiedCredentials.get(cacheId) ?? 0) > this.now()) return 'ok';

    const retryAfterMs = this.options.limiter.acquireAttempt(clientAddress);
    if (retryAfterMs > 0) return { retryAfterMs };

    const decoded = Buffer.from(header.replace(/^basic\s+/i, ''), 'base64').toString('utf8');
    const password = decoded.slice(decoded.indexOf(':') + 1);
    if (!decoded.includes(':') || !(await this.checkPassword(password))) {
      this.options.logger.warn({ clientAddress }, 'admin basic authentication failed');
      return 'invalid';
    }

    this.options.limiter.recordSuccess(clientAddress);
    this.rememberCredential(cacheId);
    return 'ok';
  }

  /** Set-Cookie value starting `session`. */
  sessionCookie(session: AdminSession): string {
    const maxAgeS = Math.floor(this.options.sessionTtlMs / 1000);
    return `${SESSION_COOKIE}=${session.id}; ${cookieAttributes()}; Max-Age=${maxAgeS}`;
  }

  /** Set-Cookie value that removes the session cookie. */
  clearedCookie(): string {
    return `${SESSION_COOKIE}=; ${cookieAttributes()}; Max-Age=0`;
  }

  private async checkPassword(password: string): Promise<boolean> {
    const hash = this.options.passwordHash;
    if (hash === undefined) return false;

    try {
      return await verifyPassword(password, hash);
    } catch (error) {
      this.options.logger.error({ err: error }, 'admin password check failed');
      return false;
    }
  }

  private rememberCredential(cacheId: string): void {
    if (this.verifiedCredentials.size >= MAX_CACHED_CREDENTIALS) this.verifiedCredentials.clear();
    this.verifiedCredentials.set(cacheId, this.now() + BASIC_AUTH_CACHE_MS);
  }
}

function cookieAttributes(): string {
  return 'Path=/_edge; HttpOnly; Secure; SameSite=Strict';
}
