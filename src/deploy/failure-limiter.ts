import { clientKey } from '../admin/login-limiter.ts';

/** Maximum number of clients tracked at once, so a scan from many addresses has bounded memory. */
export const MAX_TRACKED_CLIENTS = 10_000;

export interface FailureLimiterOptions {
  maxFailures: number;
  windowMs: number;
  /** Clients tracked at once; defaults to MAX_TRACKED_CLIENTS. */
  maxTracked?: number;
  now?: () => number;
}

interface FailureWindow {
  count: number;
  windowEnd: number;
}

/**
 * Counts failed requests per client and blocks a client with `maxFailures` failures until its
 * window ends. Clients are keyed like the admin login limiter: IPv4 by address, IPv6 by /64,
 * because one host usually owns the whole prefix.
 */
export class FailureLimiter {
  /** Windows in the order they started: all have the same length, so they also end in order. */
  private readonly windows = new Map<string, FailureWindow>();
  private readonly maxFailures: number;
  private readonly windowMs: number;
  private readonly maxTracked: number;
  private readonly now: () => number;

  constructor(options: FailureLimiterOptions) {
    this.maxFailures = options.maxFailures;
    this.windowMs = options.windowMs;
    this.maxTracked = options.maxTracked ?? MAX_TRACKED_CLIENTS;
    this.now = options.now ?? Date.now;
  }

  /** Returns the milliseconds until `clientAddress` may try again, or 0 when it is not blocked. */
  retryAfterMs(clientAddress: string): number {
    const window = this.windows.get(clientKey(clientAddress));
    const now = this.now();
    if (window === undefined || window.windowEnd <= now) return 0;
    if (window.count < this.maxFailures) return 0;

    return window.windowEnd - now;
  }

  /** Counts one failed request of `clientAddress`. */
  recordFailure(clientAddress: string): void {
    const key = clientKey(clientAddress);
    const now = this.now();
    this.pruneExpired(now);

    const window = this.windows.get(key);
    if (window !== undefined) {
      window.count++;
      return;
    }

    // NOTE: when more clients fail within one window than maxTracked, the oldest is forgotten,
    // so its block ends early. This bounds memory at the price of a weaker limit in that case.
    if (this.windows.size >= this.maxTracked) {
      this.windows.delete(this.windows.keys().next().value as string);
    }
    this.windows.set(key, { count: 1, windowEnd: now + this.windowMs });
  }

  /** Number of clients tracked. */
  get size(): number {
    return this.windows.size;
  }

  /** Drops ended windows. They are the oldest, so the loop stops at the first one still open. */
  private pruneExpired(now: number): void {
    for (const [key, window] of this.windows) {
      if (window.windowEnd > now) return;
      this.windows.delete(key);
    }
  }
}
