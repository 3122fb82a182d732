import type { EdgeConfig } from './config/schema.ts';
import type { EdgeContext } from './context.ts';
import { EdgeApi } from './edge-api.ts';
import type { Logger } from './log.ts';
import { createProxyServers, type ProxyServers } from './proxy/server.ts';
import { TargetRegistry } from './targets/registry.ts';
import { createCertificateManager } from './tls/index.ts';
import { createDockerRuntime } from './docker/index.ts';
import { createDeployService } from './deploy/index.ts';
import { createHealthMonitor } from './health/index.ts';
import { registerAdminRoutes } from './admin/index.ts';
import { createNetworkGuard } from './network-guard.ts';
import { fullCollector, IdleCollector } from './idle-collector.ts';
import { loadMallocTrim, type MallocTrimLoad } from './malloc-trim.ts';
import { SessionTickets } from './tls/session-tickets.ts';
import { loadLowMemoryNotification, type LowMemoryLoad } from './low-memory.ts';

export interface RunningEdge {
  context: EdgeContext;
  servers: ProxyServers;
  /** Stops accepting, lets in-flight requests finish within the grace period, closes everything. */
  stop(): Promise<void>;
}

export interface StartEdgeOptions {
  /** Interval of the idle collector's CPU check; tests shorten it. */
  idleCheckIntervalMs?: number;
  /** The malloc_trim addon, loaded from native/build when not given. */
  mallocTrim?: MallocTrimLoad;
  /** The session-ticket addon, loaded from native/build when not given. */
  sessionTickets?: SessionTickets;
  /** The addon that calls V8's LowMemoryNotification, loaded from native/build when not given. */
  lowMemory?: LowMemoryLoad;
}

/** Builds every module from `config` and starts the listeners. */
export async function startEdge(
  config: EdgeConfig,
  logger: Logger,
  options: StartEdgeOptions = {},
): Promise<RunningEdge> {
  const context: EdgeContext = {
    config,
    logger,
    targets: new TargetRegistry(),
    api: new EdgeApi(),
    certificates: await createCertificateManager({
      config,
      logger: logger.child({ module: 'tls' }),
    }),
    routeStats: [],
    startedAt: Date.now(),
    sessionTickets: options.sessionTickets ?? new SessionTickets(),
  };
  if (context.sessionTickets?.reason !== undefined) {
    logger
      .child({ module: 'tls' })
      .info(
        { reason: context.sessionTickets.reason },
        "sending OpenSSL's default of two TLS 1.3 session tickets per handshake",
      );
  }

  let servers: ProxyServers | undefined;
  try {
    // Learned before anything serves, so no request is dispatched without the guard.
    context.networkGuard = await createNetworkGuard(context);
    servers = await createProxyServers(context);
    context.docker = await createDockerRuntime(context);
    context.deploys = await createDeployService(context);
    context.health = createHealthMonitor(context);
    registerAdminRoutes(context);
    await servers.listen();
    // After listen: the CA validates the first orders through the port-80 listener.
    await context.certificates.start();
  } catch (error) {
    // Health probes, Docker events and renewals would otherwise go on, and log, after the failure.
    // Errors of the stop are dropped, because the start error is the one reported.
    await stopModules(context, servers, 0).catch(() => undefined);
    throw error;
  }
  const memoryLogger = logger.child({ module: 'memory' });
  const mallocTrim = options.mallocTrim ?? loadMallocTrim();
  if (mallocTrim.trim === undefined) {
    memoryLogger.info(
      { reason: mallocTrim.reason },
      'running without malloc_trim: memory glibc frees after a load stays resident',
    );
  }
  const lowMemory = options.lowMemory ?? loadLowMemoryNotification();
  if (lowMemory.notify === undefined) {
    memoryLogger.info(
      { reason: lowMemory.reason },
      "running without LowMemoryNotification: the start's garbage stays resident for about 8 s",
    );
  }
  context.idleCollector = new IdleCollector({
    logger: memoryLogger,
    collect: fullCollector(),
    reduce: lowMemory.notify,
    trim: mallocTrim.trim,
    intervalMs: options.idleCheckIntervalMs,
  });
  context.idleCollector.start();
  context.idleCollector.collectAfterStart();

  const started = servers;
  return {
    context,
    servers: started,
    async stop() {
      context.idleCollector?.stop();
      await stopModules(context, started, config.timeouts.shutdownGraceMs);
    },
  };
}

/**
 * Closes the listeners within `graceMs`, then stops the modules that exist, in the order they
 * depend on each other. Every step runs even when an earlier one fails, and the first error is
 * thrown at the end.
 */
async function stopModules(
  context: EdgeContext,
  servers: ProxyServers | undefined,
  graceMs: number,
): Promise<void> {
  const steps = [
    () => servers?.close(graceMs),
    () => context.health?.stop(),
    () => context.deploys?.stop(),
    () => context.docker?.stop(),
    () => context.certificates.stop(),
  ];
  let firstError: unknown;
  for (const step of steps) {
    try {
      await step();
    } catch (error) {
      firstError ??= error;
    }
  }
  if (firstError !== undefined) throw firstError;
}
