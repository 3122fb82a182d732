import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { RouteStats } from '../stats.ts';

/** Period over which request rates are computed. */
export const RATE_WINDOW_MS = 60_000;
/** Event-loop delay figures cover at least this long before the histogram starts over. */
export const LOOP_DELAY_PERIOD_MS = 10_000;
/** Samples closer together than this are not kept, so frequent reads cannot grow the list. */
const MIN_SAMPLE_SPACING_MS = 1_000;
/** Sampling resolution of the event-loop delay histogram. */
const LOOP_DELAY_RESOLUTION_MS = 20;

export interface RequestRates {
  requestsTotal: number;
  requestsPerSecond: number;
  /** 4xx responses per second. */
  rate4xx: number;
  /** 5xx responses per second. */
  rate5xx: number;
}

export interface LoopDelay {
  meanMs: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

interface CounterSample {
  at: number;
  requests: number;
  status4xx: number;
  status5xx: number;
}

/**
 * Request rates and event-loop delay of the edge process. Rates come from samples of the route
 * counters taken whenever a caller reads them, so no timer runs in the background: a rate covers
 * the last RATE_WINDOW_MS when the status is read at least that often, else the time since the
 * previous read (or since start).
 */
export class EdgeSampler {
  private readonly routeStats: () => RouteStats[];
  private readonly now: () => number;
  private readonly samples: CounterSample[];
  private readonly histogram: IntervalHistogram;
  private loopDelay: LoopDelay = { meanMs: 0, p50Ms: 0, p99Ms: 0, maxMs: 0 };
  private loopDelayFrom: number;

  constructor(routeStats: () => RouteStats[], startedAt: number, now: () => number = Date.now) {
    this.routeStats = routeStats;
    this.now = now;
    this.samples = [{ at: startedAt, requests: 0, status4xx: 0, status5xx: 0 }];
    this.histogram = monitorEventLoopDelay({ resolution: LOOP_DELAY_RESOLUTION_MS });
    this.histogram.enable();
    this.loopDelayFrom = now();
  }

  rates(): RequestRates {
    const current = this.sampleCounters();
    const oldest = this.samples[0]!;
    const seconds = Math.max((current.at - oldest.at) / 1000, 1);
    this.keepSample(current);

    return {
      requestsTotal: current.requests,
      requestsPerSecond: round((current.requests - oldest.requests) / seconds),
      rate4xx: round((current.status4xx - oldest.status4xx) / seconds),
      rate5xx: round((current.status5xx - oldest.status5xx) / seconds),
    };
  }

  /** Event-loop delay since the histogram last started over, at least LOOP_DELAY_PERIOD_MS ago. */
  eventLoopDelay(): LoopDelay {
    const now = this.now();
    if (now - this.loopDelayFrom < LOOP_DELAY_PERIOD_MS && this.loopDelay.maxMs > 0) {
      return this.loopDelay;
    }

    // Each sample is the time between two timer ticks, so it includes the sampling interval
    // itself: an idle loop reads about LOOP_DELAY_RESOLUTION_MS. Only the excess is delay.
    const toMs = (nanoseconds: number) =>
      round(Math.max(0, nanoseconds / 1e6 - LOOP_DELAY_RESOLUTION_MS));
    if (this.histogram.count > 0) {
      this.loopDelay = {
        meanMs: toMs(this.histogram.mean),
        p50Ms: toMs(this.histogram.percentile(50)),
        p99Ms: toMs(this.histogram.percentile(99)),
        maxMs: toMs(this.histogram.max),
      };
    }
    if (now - this.loopDelayFrom >= LOOP_DELAY_PERIOD_MS) {
      this.histogram.reset();
      this.loopDelayFrom = now;
    }
    return this.loopDelay;
  }

  private sampleCounters(): CounterSample {
    const sample: CounterSample = { at: this.now(), requests: 0, status4xx: 0, status5xx: 0 };
    for (const stats of this.routeStats()) {
      sample.requests += stats.requests;
      sample.status4xx += stats.statusClasses[4]!;
      sample.status5xx += stats.statusClasses[5]!;
    }
    return sample;
  }

  /** Keeps samples of the last window plus the newest older one, which is the window's start. */
  private keepSample(sample: CounterSample): void {
    if (sample.at - this.samples.at(-1)!.at < MIN_SAMPLE_SPACING_MS) return;

    this.samples.push(sample);
    while (this.samples.length > 1 && sample.at - this.samples[1]!.at >= RATE_WINDOW_MS) {
      this.samples.shift();
    }
  }
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}
