import type { Logger } from '../log.ts';

/** setTimeout fires at once for delays above 2^31 - 1 ms (about 24.8 days). */
const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

/** Minimum time between two checks not requested through wake(), so a past due time cannot spin the loop. */
const MIN_CHECK_SPACING_MS = 10;

export interface RenewalLoopOptions {
  /** Maximum sleep between two checks, whatever the next due time. */
  intervalMs: number;
  now: () => number;
  logger: Logger;
}

/**
 * Runs `check` now, then again at the time it returns, but never later than `intervalMs` after
 * the last run. So no timer is ever set weeks ahead, and a wrong clock or a missed due time is
 * corrected within one interval.
 */
export class RenewalLoop {
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private stopped = true;
  private wakeRequested = false;

  constructor(
    private readonly check: () => Promise<number | undefined>,
    private readonly options: RenewalLoopOptions,
  ) {}

  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** Runs a check soon, for example after an attempt changed a due time. */
  wake(): void {
    if (this.running) {
      this.wakeRequested = true;
      return;
    }
    this.schedule(0);
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;

    clearTimeout(this.timer);
    const delay = Math.min(Math.max(0, delayMs), this.options.intervalMs, MAX_TIMER_DELAY_MS);
    this.timer = setTimeout(() => void this.run(), delay);
    this.timer.unref();
  }

  private async run(): Promise<void> {
    this.running = true;
    this.wakeRequested = false;
    let nextDueAt: number | undefined;
    try {
      nextDueAt = await this.check();
    } catch (error) {
      this.options.logger.error({ err: error }, 'certificate check failed');
    } finally {
      this.running = false;
    }

    const wait = nextDueAt === undefined ? this.options.intervalMs : nextDueAt - this.options.now();
    this.schedule(this.wakeRequested ? 0 : Math.max(wait, MIN_CHECK_SPACING_MS));
  }
}
