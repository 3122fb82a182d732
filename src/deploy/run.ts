import { EdgeError, errorMessage } from '../errors.ts';
import type { DeployStep } from '../status.ts';
import type { DeployEntry } from './store.ts';

/** One NDJSON line of deploy progress. The last line of a deploy always has `result`. */
export type ProgressLine =
  | {
      step: string;
      status: 'running' | 'ok' | 'failed' | 'progress';
      durationMs?: number;
      message?: string;
    }
  | {
      result: 'succeeded' | 'failed';
      id: string;
      service: string;
      image: string;
      digest?: string;
      failedStep?: string;
      error?: string;
      durationMs?: number;
    };

/** Raised by a failed step; carries the step's name. */
export class StepError extends EdgeError {
  readonly step: string;

  constructor(step: string, cause: unknown) {
    const status = cause instanceof EdgeError ? cause.status : 500;
    const code = cause instanceof EdgeError ? cause.code : 'EDGE_DEPLOY_STEP_FAILED';
    super(code, errorMessage(cause), { status, context: { step }, cause });
    this.step = step;
  }
}

/**
 * The live state of one deploy: its record, the progress lines sent so far, and the listeners
 * (HTTP responses) that stream them. A second request with the same idempotency key attaches to
 * the same run and receives every line from the start.
 */
export class DeployRun {
  readonly entry: DeployEntry;
  readonly lines: ProgressLine[] = [];
  private readonly listeners = new Set<(line: ProgressLine) => void>();
  private readonly onChange: (entry: DeployEntry) => void;
  private readonly now: () => number;
  private finishedWaiters: (() => void)[] = [];

  constructor(
    entry: DeployEntry,
    onChange: (entry: DeployEntry) => void,
    now: () => number = Date.now,
  ) {
    this.entry = entry;
    this.onChange = onChange;
    this.now = now;
  }

  get finished(): boolean {
    return this.entry.state !== 'running';
  }

  /** Sends every line so far to `listener`, then each new one; returns the unsubscribe function. */
  follow(listener: (line: ProgressLine) => void): () => void {
    for (const line of this.lines) listener(line);
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  whenFinished(): Promise<void> {
    if (this.finished) return Promise.resolve();
    return new Promise((resolve) => this.finishedWaiters.push(resolve));
  }

  /**
   * Runs one named step: reports it running, then ok with its duration, or failed. The ok line's
   * message is `describe(result)`, or the result itself when it is a string.
   */
  async step<T>(
    name: string,
    work: (progress: (message: string) => void) => Promise<T>,
    describe?: (result: T) => string,
  ): Promise<T> {
    const step: DeployStep = { name, status: 'running' };
    this.entry.steps.push(step);
    this.emit({ step: name, status: 'running' });
    const startedAt = this.now();

    try {
      const result = await work((message) =>
        this.emit({ step: name, status: 'progress', message }),
      );
      let message: string | undefined;
      if (describe !== undefined) message = describe(result);
      else if (typeof result === 'string') message = result;
      this.completeStep(step, 'ok', startedAt, message);
      return result;
    } catch (error) {
      this.completeStep(step, 'failed', startedAt, errorMessage(error));
      throw error instanceof StepError ? error : new StepError(name, error);
    }
  }

  /** Ends the deploy and sends the final line. */
  finish(error?: unknown): void {
    const entry = this.entry;
    entry.finishedAt = new Date(this.now()).toISOString();
    entry.durationMs = this.now() - Date.parse(entry.startedAt);
    entry.state = error === undefined ? 'succeeded' : 'failed';
    if (error !== undefined) {
      entry.failedStep = error instanceof StepError ? error.step : entry.steps.at(-1)?.name;
      entry.error = errorMessage(error);
    }
    this.onChange(entry);
    this.emit(finalLine(entry));
    for (const wake of this.finishedWaiters.splice(0)) wake();
    this.listeners.clear();
  }

  private completeStep(
    step: DeployStep,
    status: 'ok' | 'failed',
    startedAt: number,
    message?: string,
  ): void {
    step.status = status;
    step.durationMs = this.now() - startedAt;
    if (message !== undefined) step.message = message;
    this.onChange(this.entry);
    this.emit({
      step: step.name,
      status,
      durationMs: step.durationMs,
      ...(message ? { message } : {}),
    });
  }

  private emit(line: ProgressLine): void {
    this.lines.push(line);
    for (const listener of this.listeners) listener(line);
  }
}

/** Returns the last line of a finished deploy, also sent for a repeated idempotency key. */
export function finalLine(entry: DeployEntry): ProgressLine {
  return {
    result: entry.state === 'succeeded' ? 'succeeded' : 'failed',
    id: entry.id,
    service: entry.service,
    image: entry.image,
    ...(entry.digest ? { digest: entry.digest } : {}),
    ...(entry.failedStep ? { failedStep: entry.failedStep } : {}),
    ...(entry.error ? { error: entry.error } : {}),
    ...(entry.durationMs !== undefined ? { durationMs: entry.durationMs } : {}),
  };
}
