import v8 from 'node:v8';
import vm from 'node:vm';
import type { Logger } from './log.ts';

/** How often the collector looks at the CPU time the process used since its last look. */
export const IDLE_CHECK_INTERVAL_MS = 5_000;
/**
 * Share of one core above which an interval counts as busy. The idle edge (timers, health
 * probes, the event-loop delay sampler) stays far below it; one collection (about 10 ms) too.
 */
export const BUSY_CPU_SHARE = 0.02;
/**
 * Full collections after each busy period, one per quiet interval. The second one also frees
 * what was still in use at the first, such as idle upstream connections that closed since.
 */
export const COLLECTIONS_AFTER_LOAD = 2;

export interface IdleCollection {
  /** Milliseconds since the epoch. */
  at: number;
  durationMs: number;
  heapTotalBefore: number;
  heapTotalAfter: number;
  rssBefore: number;
  rssAfter: number;
  /** Whether malloc_trim gave memory back to the system, or null when the edge runs without it. */
  mallocTrimReleased: boolean | null;
}

export interface IdleCollectorOptions {
  logger: Logger;
  /** Runs one full garbage collection. */
  collect: () => void;
  /**
   * Runs V8's LowMemoryNotification: full collections that also shrink the young generation.
   * Only the collection after start uses it.
   */
  reduce?: () => void;
  /**
   * Returns the C library's free memory to the system after each collection (glibc's malloc_trim),
   * and reports whether there was any.
   */
  trim?: () => boolean;
  intervalMs?: number;
  /** CPU time the process used so far, in microseconds. */
  cpuMicros?: () => number;
  now?: () => number;
  memory?: () => { heapTotal: number; rss: number };
}

/**
 * Gives memory back to the system right after the start and once a load is over. V8 starts its
 * own memory reducer only after a full collection finds the old generation well above its size at
 * the reducer's previous run. After smaller bursts, the edge on Node 20 kept about 8 MiB of heap it no longer used.
 * This collector watches the process's CPU time. After an interval with more than BUSY_CPU_SHARE
 * of a core, it runs COLLECTIONS_AFTER_LOAD full collections, one in each of the following quiet
 * intervals. Under load it does nothing, and no request pays for it.
 */
export class IdleCollector {
  private readonly logger: Logger;
  private readonly collect: () => void;
  private readonly reduce: (() => void) | undefined;
  private trim: (() => boolean) | undefined;
  private readonly intervalMs: number;
  private readonly cpuMicros: () => number;
  private readonly now: () => number;
  private readonly memory: () => { heapTotal: number; rss: number };
  private timer: NodeJS.Timeout | undefined;
  private lastCpu = 0;
  private lastAt = 0;
  private pending = 0;
  private collectedLastCheck = false;
  private count = 0;
  private latest: IdleCollection | undefined;

  constructor(options: IdleCollectorOptions) {
    this.logger = options.logger;
    this.collect = options.collect;
    this.reduce = options.reduce;
    this.trim = options.trim;
    this.intervalMs = options.intervalMs ?? IDLE_CHECK_INTERVAL_MS;
    this.cpuMicros = options.cpuMicros ?? cpuMicrosOfProcess;
    this.now = options.now ?? Date.now;
    this.memory = options.memory ?? (() => process.memoryUsage());
  }

  /**
   * Frees what the start left behind: the garbage of loading and compiling the modules, and the
   * young generation that grew meanwhile. V8's own memory reducer does the same only after about
   * 8 s without load, and until then the edge used about 6 MiB more with Node 20.20 and the
   * bench configuration. Runs `reduce`, or a full collection without it, then the trim.
   */
  collectAfterStart(): void {
    this.runCollection(this.reduce ?? this.collect, 'collected garbage after start');
    // As after the collections that follow a load, this CPU time must not count as load.
    this.lastCpu = this.cpuMicros();
  }

  start(): void {
    if (this.timer !== undefined) return;

    this.lastCpu = this.cpuMicros();
    this.lastAt = this.now();
    this.timer = setInterval(() => this.check(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Collections run since start, the latest one, and whether malloc_trim follows each. */
  status(): { collections: number; latest: IdleCollection | undefined; mallocTrim: boolean } {
    return { collections: this.count, latest: this.latest, mallocTrim: this.trim !== undefined };
  }

  /** Measures the CPU share of the interval that just ended, and collects when one is due. */
  check(): void {
    const cpu = this.cpuMicros();
    const at = this.now();
    const elapsedMs = Math.max(at - this.lastAt, 1);
    const share = (cpu - this.lastCpu) / 1000 / elapsedMs;
    this.lastCpu = cpu;
    this.lastAt = at;
    const followsCollection = this.collectedLastCheck;
    this.collectedLastCheck = false;

    // V8 sweeps and unmaps on its own threads after a collection returns. With a heap of hundreds
    // of MiB that CPU time alone passed the busy share, so the interval after one never arms.
    if (share > BUSY_CPU_SHARE && !followsCollection) {
      this.pending = COLLECTIONS_AFTER_LOAD;
      return;
    }
    if (this.pending === 0) return;

    this.pending--;
    this.runCollection(this.collect, 'collected garbage after load');
    this.collectedLastCheck = true;
    // The collection's own CPU time belongs to no interval, so it can never count as load.
    this.lastCpu = this.cpuMicros();
  }

  private runCollection(collect: () => void, message: string): void {
    const before = this.memory();
    const started = process.hrtime.bigint();
    try {
      collect();
    } catch (err) {
      this.logger.warn({ err }, 'idle garbage collection failed');
      this.pending = 0;
      return;
    }

    // After the collection, so the buffers it collected are free in glibc's heaps. What V8's threads
    // free later is returned by the next collection's trim.
    const mallocTrimReleased = this.runTrim();
    const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
    const after = this.memory();
    this.count++;
    this.latest = {
      at: this.now(),
      durationMs: Math.round(durationMs * 10) / 10,
      heapTotalBefore: before.heapTotal,
      heapTotalAfter: after.heapTotal,
      rssBefore: before.rss,
      rssAfter: after.rss,
      mallocTrimReleased,
    };
    this.logger.debug({ ...this.latest, remaining: this.pending }, message);
  }

  /** Runs malloc_trim when the edge has it. After a failure, later collections run without it. */
  private runTrim(): boolean | null {
    if (this.trim === undefined) return null;
    try {
      return this.trim();
    } catch (err) {
      this.logger.warn({ err }, 'malloc_trim failed; later idle collections run without it');
      this.trim = undefined;
      return null;
    }
  }
}

/**
 * Returns V8's full garbage collection as a function. Node hides it unless started with
 * --expose-gc. The flag set at run time exposes gc() in contexts created afterwards, so one new
 * vm context hands it over. The flag is then cleared, so later contexts get no gc().
 */
export function fullCollector(): () => void {
  const exposed = (globalThis as { gc?: unknown }).gc;
  if (typeof exposed === 'function') return () => (exposed as () => void)();

  v8.setFlagsFromString('--expose-gc');
  let gc: unknown;
  try {
    gc = vm.runInNewContext('gc');
  } finally {
    v8.setFlagsFromString('--no-expose-gc');
  }
  if (typeof gc !== 'function') throw new Error('V8 did not expose gc() with --expose-gc');
  return () => (gc as () => void)();
}

function cpuMicrosOfProcess(): number {
  const usage = process.cpuUsage();
  return usage.user + usage.system;
}
