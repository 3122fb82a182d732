import type { IPv6 } from 'ipaddr.js';
import { ipaddr } from '../packages.ts';

/** Failed logins allowed per client within one window. */
export const DEFAULT_LOGIN_MAX_FAILURES = 5;
/** Window in which failures are counted; a blocked client may try again when it ends. */
export const DEFAULT_LOGIN_WINDOW_MS = 15 * 60 * 1000;
/** Maximum number of tracked clients, so a scan from many addresses cannot grow memory without bound. */
const MAX_TRACKED_CLIENTS = 10_000;

export interface LoginLimiterOptions {
  maxFailures?: number;
  windowMs?: number;
  now?: () => number;
}

interface FailureWindow {
  startedAt: number;
  count: number;
}

/**
 * Limits login attempts per client address, which must be the socket peer and never a header.
 * IPv6 clients are grouped by /64, because one host usually owns the whole prefix.
 */
export class LoginRateLimiter {
  private readonly windows = new Map<string, FailureWindow>();
  private readonly maxFailures: number;
  private readonly windowMs: number;
  private readonly now: () => number;

  constructor(options: LoginLimiterOptions = {}) {
    this.maxFailures = options.maxFailures ?? DEFAULT_LOGIN_MAX_FAILURES;
    this.windowMs = options.windowMs ?? DEFAULT_LOGIN_WINDOW_MS;
    this.now = options.now ?? Date.now;
  }

  /**
   * Counts one attempt and returns 0 when it may go ahead, else the milliseconds until the client
   * may try again. The attempt counts before the password is checked, so parallel requests cannot
   * get more checks than the limit. `recordSuccess` clears the client's attempts.
   */
  acquireAttempt(clientAddress: string): number {
    const key = clientKey(clientAddress);
    const now = this.now();
    let window = this.windows.get(key);
    if (window === undefined || now - window.startedAt >= this.windowMs) {
      window = { startedAt: now, count: 0 };
      this.track(key, window);
    }

    if (window.count >= this.maxFailures) return window.startedAt + this.windowMs - now;
    window.count++;
    return 0;
  }

  /** Milliseconds until a blocked client may try again, 0 when it is not blocked. Counts nothing. */
  blockedFor(clientAddress: string): number {
    const window = this.windows.get(clientKey(clientAddress));
    if (window === undefined || window.count < this.maxFailures) return 0;
    return Math.max(0, window.startedAt + this.windowMs - this.now());
  }

  recordSuccess(clientAddress: string): void {
    this.windows.delete(clientKey(clientAddress));
  }

  private track(key: string, window: FailureWindow): void {
    this.windows.delete(key);
    if (this.windows.size >= MAX_TRACKED_CLIENTS) {
      const oldest = this.windows.keys().next().value as string;
      this.windows.delete(oldest);
    }
    this.windows.set(key, window);
  }
}

/** Returns the rate-limit key of an address: IPv4 as is (also when IPv4-mapped), IPv6 by /64. */
export function clientKey(address: string): string {
  if (!ipaddr.isValid(address)) return address;

  const parsed = ipaddr.process(address);
  if (parsed.kind() === 'ipv4') return parsed.toString();

  const parts = (parsed as IPv6).parts.slice(0, 4);
  return `${parts.map((part) => part.toString(16)).join(':')}::/64`;
}
