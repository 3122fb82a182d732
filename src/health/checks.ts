import type { EdgeConfig, RouteConfig, SiteConfig } from '../config/schema.ts';
import { serviceKey, upstreamKey } from '../targets/registry.ts';

/** One upstream of one site to probe: every route of the site that uses the same target key. */
export interface HealthCheckPlan {
  site: SiteConfig;
  /** Target registry key: `upstream:<origin>` or `service:<name>`. */
  key: string;
  routes: RouteConfig[];
  /** Origin of a fixed upstream, probed while the registry has no target for the key. */
  fixedOrigin?: string;
  /** Service name for service routes, used in messages. */
  service?: string;
}

/**
 * Lists the checks the configuration requires. Static routes have no upstream and get none.
 * Checks are per site because each site probes with its own Host header and health settings.
 */
export function planHealthChecks(config: EdgeConfig): HealthCheckPlan[] {
  const plans = new Map<string, HealthCheckPlan>();

  for (const site of config.sites) {
    for (const route of site.routes) {
      const key = routeTargetKey(route);
      if (key === undefined) continue;

      const id = `${site.name}\n${key}`;
      const existing = plans.get(id);
      if (existing !== undefined) {
        existing.routes.push(route);
        continue;
      }

      const plan: HealthCheckPlan = { site, key, routes: [route] };
      if (route.upstream !== undefined) plan.fixedOrigin = new URL(route.upstream).origin;
      if (route.service !== undefined) plan.service = route.service;
      plans.set(id, plan);
    }
  }

  return [...plans.values()];
}

/**
 * Returns the target registry key of a proxied route, or undefined for a static route. Fixed
 * upstreams are keyed by URL origin, as the proxy keys them.
 */
export function routeTargetKey(route: RouteConfig): string | undefined {
  if (route.upstream !== undefined) return upstreamKey(new URL(route.upstream).origin);
  if (route.service !== undefined) return serviceKey(route.service);
  return undefined;
}
