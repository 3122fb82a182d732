import type { EdgeConfig } from '../config/schema.ts';
import type { HealthMonitor } from '../context.ts';
import type { Logger } from '../log.ts';
import type { UpstreamStatus } from '../status.ts';
import type { TargetRegistry } from '../targets/registry.ts';
import { planHealthChecks, type HealthCheckPlan } from './checks.ts';
import { probeUpstream, type ProbeFunction, type ProbeResult } from './probe.ts';

export interface HealthMonitorOptions {
  config: EdgeConfig;
  targets: TargetRegistry;
  logger: Logger;
  /** Replaces every site's `healthCheck.intervalMs`, so tests can probe every few milliseconds. */
  intervalMs?: number;
  /** Replaces every site's `healthCheck.timeoutMs`. */
  timeoutMs?: number;
  probe?: ProbeFunction;
  /** Clock in milliseconds since the epoch. */
  now?: () => number;
}

interface CheckState {
  plan: HealthCheckPlan;
  /** Origin the current state belongs to. */
  target?: string;
  healthy?: boolean;
  latencyMs?: number;
  lastError?: string;
  lastErrorAt?: number;
  since?: number;
  checkedAt?: number;
  /** Bumped on every target switch, so a probe of the replaced target is discarded. */
  generation: number;
  timer?: NodeJS.Timeout;
  running?: Promise<void>;
  abort?: AbortController;
  /** Probe again as soon as the running probe ends, because the target changed meanwhile. */
  rerun: boolean;
}

/**
 * Probes every proxied upstream on its site's health check path and interval, and keeps the
 * result per route. A state change is logged once, not every probe. The monitor follows target
 * switches of the registry, so after a deploy it probes the new container.
 */
export class UpstreamHealthMonitor implements HealthMonitor {
  private readonly options: HealthMonitorOptions;
  private readonly log: Logger;
  private readonly probe: ProbeFunction;
  private readonly now: () => number;
  private readonly checks: CheckState[];
  private readonly onSwitch = (key: string) => this.handleSwitch(key);
  private stopped = false;

  constructor(options: HealthMonitorOptions) {
    this.options = options;
    this.log = options.logger;
    this.probe = options.probe ?? probeUpstream;
    this.now = options.now ?? Date.now;
    this.checks = planHealthChecks(options.config).map((plan) => ({
      plan,
      generation: 0,
      rerun: false,
    }));
  }

  /** Starts probing every upstream now and then on each site's interval. */
  start(): void {
    this.options.targets.on('switch', this.onSwitch);
    for (const check of this.checks) this.runCheck(check);
  }

  status(): UpstreamStatus[] {
    return this.checks.flatMap((check) =>
      check.plan.routes.map((route) => toStatus(check, route.path)),
    );
  }

  /** Stops the timers and aborts running probes; resolves when none is left. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.options.targets.off('switch', this.onSwitch);
    for (const check of this.checks) {
      clearTimeout(check.timer);
      check.abort?.abort();
    }

    await Promise.all(this.checks.map((check) => check.running));
  }

  private runCheck(check: CheckState): void {
    check.timer = undefined;
    if (this.stopped) return;

    check.rerun = false;
    check.running = this.probeOnce(check).finally(() => {
      check.running = undefined;
      this.scheduleCheck(check);
    });
  }

  private scheduleCheck(check: CheckState): void {
    if (this.stopped) return;

    const delayMs = check.rerun ? 0 : this.intervalMs(check);
    check.timer = setTimeout(() => this.runCheck(check), delayMs);
    check.timer.unref();
  }

  private async probeOnce(check: CheckState): Promise<void> {
    const generation = check.generation;
    const origin = this.currentOrigin(check);
    check.target = origin;
    if (origin === undefined) {
      const error = `service ${check.plan.service} has no running container`;
      this.recordResult(check, { healthy: false, latencyMs: 0, error });
      return;
    }

    const abort = new AbortController();
    check.abort = abort;
    const result = await this.probe({
      origin,
      path: check.plan.site.healthCheck.path,
      host: check.plan.site.hosts[0]!,
      timeoutMs: this.options.timeoutMs ?? check.plan.site.healthCheck.timeoutMs,
      upgradeRequiredIsHealthy: check.plan.routes.some((route) => route.websocket),
      signal: abort.signal,
    });
    check.abort = undefined;

    if (this.stopped || generation !== check.generation) return;
    this.recordResult(check, result);
  }

  private recordResult(check: CheckState, result: ProbeResult): void {
    const now = this.now();
    const changed = check.healthy !== result.healthy;
    check.healthy = result.healthy;
    check.latencyMs =
      result.error === undefined || result.status !== undefined ? result.latencyMs : undefined;
    check.checkedAt = now;
    if (result.error !== undefined) {
      check.lastError = result.error;
      check.lastErrorAt = now;
    }
    if (!changed) return;

    check.since = now;
    this.logStateChange(check, result);
  }

  private logStateChange(check: CheckState, result: ProbeResult): void {
    const fields = {
      site: check.plan.site.name,
      routes: check.plan.routes.map((route) => route.path),
      target: check.target ?? null,
      latencyMs: result.latencyMs,
    };
    if (result.healthy) {
      this.log.info(fields, 'upstream healthy');
    } else {
      this.log.warn(
        { ...fields, status: result.status, error: result.error },
        'upstream unhealthy',
      );
    }
  }

  private handleSwitch(key: string): void {
    for (const check of this.checks) {
      if (check.plan.key !== key) continue;

      check.generation++;
      check.healthy = undefined;
      check.latencyMs = undefined;
      check.since = this.now();
      check.target = this.currentOrigin(check);
      this.log.debug(
        { site: check.plan.site.name, target: check.target },
        'health check target switched',
      );

      if (check.running !== undefined) {
        check.rerun = true;
        check.abort?.abort();
        continue;
      }
      clearTimeout(check.timer);
      this.runCheck(check);
    }
  }

  private currentOrigin(check: CheckState): string | undefined {
    const target = this.options.targets.slot(check.plan.key).current;
    return target?.origin ?? check.plan.fixedOrigin;
  }

  private intervalMs(check: CheckState): number {
    return this.options.intervalMs ?? check.plan.site.healthCheck.intervalMs;
  }
}

function toStatus(check: CheckState, route: string): UpstreamStatus {
  const status: UpstreamStatus = { site: check.plan.site.name, route, target: check.target ?? '' };
  if (check.healthy !== undefined) status.healthy = check.healthy;
  if (check.latencyMs !== undefined) status.latencyMs = check.latencyMs;
  if (check.lastError !== undefined) status.lastError = check.lastError;
  if (check.lastErrorAt !== undefined)
    status.lastErrorAt = new Date(check.lastErrorAt).toISOString();
  if (check.since !== undefined) status.since = new Date(check.since).toISOString();
  if (check.checkedAt !== undefined) status.checkedAt = new Date(check.checkedAt).toISOString();
  return status;
}
