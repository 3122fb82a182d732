import type { EdgeContext, HealthMonitor } from '../context.ts';

/** Starts active health checks of every upstream. */
export function createHealthMonitor(_context: EdgeContext): HealthMonitor | undefined {
  return undefined;
}
