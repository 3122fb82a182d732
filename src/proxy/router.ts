import type { RouteConfig, SiteConfig } from '../config/schema.ts';
import type { RouteStats } from '../stats.ts';
import type { TargetSlot } from '../targets/registry.ts';
import { matchesPrefix } from './path.ts';
import type { StaticHandler } from './static.ts';

/** A route ready for the request path: its prefix, its target and its counters. */
export interface CompiledRoute {
  site: SiteConfig;
  config: RouteConfig;
  /** Route path without a trailing `/`; empty for `/`. */
  prefix: string;
  /** Route path as configured, used in logs. */
  name: string;
  stats: RouteStats;
  /** Upstream or service routes: the slot whose current target serves the request. */
  slot: TargetSlot | undefined;
  /** Static routes: the file handler. */
  files: StaticHandler | undefined;
}

/** Routes of every site, longest prefix first. */
export class Router {
  private readonly bySite = new Map<SiteConfig, CompiledRoute[]>();

  add(route: CompiledRoute): void {
    let routes = this.bySite.get(route.site);
    if (routes === undefined) {
      routes = [];
      this.bySite.set(route.site, routes);
    }
    routes.push(route);
    routes.sort((a, b) => b.prefix.length - a.prefix.length);
  }

  /** Returns the route of `site` with the longest prefix that contains `path`. */
  match(site: SiteConfig, path: string): CompiledRoute | undefined {
    const routes = this.bySite.get(site);
    if (routes === undefined) return undefined;
    for (let i = 0; i < routes.length; i++) {
      const route = routes[i]!;
      if (matchesPrefix(path, route.prefix)) return route;
    }
    return undefined;
  }

  routes(): CompiledRoute[] {
    return [...this.bySite.values()].flat();
  }
}

/** `/api/` and `/api` both become `/api`; `/` becomes the empty prefix that matches everything. */
export function routePrefix(path: string): string {
  return path.replace(/\/+$/, '');
}
