import type { EdgeContext } from '../context.ts';
import { UpstreamHealthMonitor, type HealthMonitorOptions } from './monitor.ts';

export { UpstreamHealthMonitor, type HealthMonitorOptions } from './monitor.ts';
export { probeUpstream, type ProbeFunction, type ProbeOptions, type ProbeResult } from './probe.ts';

/**
 * Starts active health checks of every proxied upstream. `overrides` replaces intervals, the
 * probe or the clock, for tests.
 */
export function createHealthMonitor(
  context: EdgeContext,
  overrides: Partial<HealthMonitorOptions> = {},
): UpstreamHealthMonitor {
  const monitor = new UpstreamHealthMonitor({
    config: context.config,
    targets: context.targets,
    logger: context.logger.child({ module: 'health' }),
    ...overrides,
  });
  monitor.start();
  return monitor;
}
