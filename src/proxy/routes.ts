import type { EdgeContext } from '../context.ts';
import { DEFAULT_DRAIN_TIMEOUT_MS } from '../config/schema.ts';
import { errorMessage } from '../errors.ts';
import { RouteStats } from '../stats.ts';
import { serviceKey, Target, upstreamKey, type TargetSlot } from '../targets/registry.ts';
import { closePool } from './forwarder.ts';
import { routePrefix, Router } from './router.ts';
import { StaticHandler } from './static.ts';

/**
 * Compiles every route of the configuration, in config order: counters pushed to
 * `context.routeStats`, a target slot for upstream and service routes (fixed upstreams get their
 * Target now), a file handler for static routes.
 */
export function buildRouter(context: EdgeContext): Router {
  const router = new Router();
  for (const site of context.config.sites) {
    for (const config of site.routes) {
      const stats = new RouteStats(site.name, config.path);
      context.routeStats.push(stats);
      router.add({
        site,
        config,
        prefix: routePrefix(config.path),
        name: config.path,
        stats,
        slot: slotOf(context, config.upstream, config.service),
        files:
          config.static === undefined ? undefined : new StaticHandler(config.static, config.spa),
      });
    }
  }
  return router;
}

function slotOf(context: EdgeContext, upstream?: string, service?: string): TargetSlot | undefined {
  if (service !== undefined) return context.targets.slot(serviceKey(service));
  if (upstream === undefined) return undefined;

  const origin = new URL(upstream).origin;
  const key = upstreamKey(origin);
  const slot = context.targets.slot(key);
  if (slot.current === undefined) context.targets.switch(key, new Target(origin));
  return slot;
}

/**
 * Closes the connection pool of a target a deploy replaced, once its in-flight requests ended
 * (or the drain timeout passed), so replaced containers leave no idle sockets behind.
 */
export function closeReplacedPools(context: EdgeContext): void {
  context.targets.on('switch', (_key: string, next: Target, previous: Target | undefined) => {
    if (previous === undefined || previous === next) return;
    previous
      .drain(DEFAULT_DRAIN_TIMEOUT_MS)
      .then(() => closePool(previous))
      .catch((error: unknown) => {
        context.logger.warn(
          { target: previous.origin, err: errorMessage(error) },
          'closing upstream pool failed',
        );
      });
  });
}
