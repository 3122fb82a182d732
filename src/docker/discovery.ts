import type { EdgeConfig } from '../config/schema.ts';
import { errorMessage } from '../errors.ts';
import type { Logger } from '../log.ts';
import { serviceKey, Target, type TargetRegistry } from '../targets/registry.ts';
import type { DockerEngine, DockerEvent } from './engine.ts';
import {
  containerAddress,
  containerOrigin,
  findServiceContainer,
  serviceNetwork,
} from './service-container.ts';

export const DEFAULT_EVENTS_RETRY_MS = 1_000;
export const MAX_EVENTS_RETRY_MS = 30_000;

/** Container actions after which a service's container or its address may have changed. */
const CONTAINER_ACTIONS = new Set(['start', 'die', 'restart', 'rename', 'destroy', 'unpause']);
const NETWORK_ACTIONS = new Set(['connect', 'disconnect']);

export interface ServiceDiscoveryOptions {
  engine: DockerEngine;
  config: EdgeConfig;
  targets: TargetRegistry;
  logger: Logger;
  /** First wait before reconnecting to the event stream; doubles up to MAX_EVENTS_RETRY_MS. */
  retryMs?: number;
}

/**
 * Points each service's target slot at its running container and follows Docker events, so a
 * restart or an address change reaches the proxy without restarting the edge. A deploy pauses
 * discovery for its service while it owns the switch.
 */
export class ServiceDiscovery {
  private readonly options: ServiceDiscoveryOptions;
  private readonly paused = new Set<string>();
  private unsubscribe: (() => void) | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryMs: number;
  private stopped = false;
  private queue: Promise<void> = Promise.resolve();

  constructor(options: ServiceDiscoveryOptions) {
    this.options = options;
    this.retryMs = options.retryMs ?? DEFAULT_EVENTS_RETRY_MS;
  }

  /** Resolves every service once and starts following events. Errors are logged, not thrown. */
  async start(): Promise<void> {
    this.subscribe();
    await this.refresh();
  }

  /** Stops updating `service` until resume(): a deploy switches it itself. */
  pause(service: string): void {
    this.paused.add(service);
  }

  resume(service: string): Promise<void> {
    this.paused.delete(service);
    return this.refresh(service);
  }

  /** Looks up the container of `service` (or of every service) and switches its slot. */
  refresh(service?: string): Promise<void> {
    const names = service !== undefined ? [service] : Object.keys(this.options.config.services);
    const run = this.queue.then(() => this.resolveAll(names));
    this.queue = run.catch(() => undefined);
    return run;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.unsubscribe?.();
  }

  private async resolveAll(names: string[]): Promise<void> {
    for (const name of names) {
      if (this.paused.has(name) || this.stopped) continue;
      try {
        await this.resolve(name);
      } catch (error) {
        this.options.logger.warn(
          { service: name, err: errorMessage(error) },
          'service lookup failed',
        );
      }
    }
  }

  private async resolve(name: string): Promise<void> {
    const { engine, config, targets, logger } = this.options;
    const service = config.services[name]!;
    const info = await findServiceContainer(engine, name, service.container);
    if (info === undefined || this.paused.has(name)) return;

    const network = serviceNetwork(config, name);
    const address = containerAddress(info, network);
    if (address === undefined) {
      logger.warn(
        { service: name, container: info.Id, network },
        'service container has no address',
      );
      return;
    }

    const origin = containerOrigin(address, service.port);
    const current = targets.slot(serviceKey(name)).current;
    if (current?.origin === origin && current.id === info.Id) return;
    targets.switch(serviceKey(name), new Target(origin, info.Id));
    logger.info(
      { service: name, container: info.Id.slice(0, 12), origin },
      'service target changed',
    );
  }

  private subscribe(): void {
    if (this.stopped) return;
    this.unsubscribe = this.options.engine.followEvents(
      (event) => this.onEvent(event),
      (error) => this.onEventsEnd(error),
    );
  }

  private onEvent(event: DockerEvent): void {
    this.retryMs = this.options.retryMs ?? DEFAULT_EVENTS_RETRY_MS;
    const relevant =
      (event.Type === 'container' && CONTAINER_ACTIONS.has(event.Action)) ||
      (event.Type === 'network' && NETWORK_ACTIONS.has(event.Action));
    if (relevant) void this.refresh();
  }

  private onEventsEnd(error?: Error): void {
    if (this.stopped) return;
    this.options.logger.warn(
      { endpoint: this.options.engine.endpoint, err: error?.message, retryMs: this.retryMs },
      'docker event stream ended, reconnecting',
    );
    this.retryTimer = setTimeout(() => {
      this.subscribe();
      void this.refresh();
    }, this.retryMs);
    this.retryMs = Math.min(this.retryMs * 2, MAX_EVENTS_RETRY_MS);
  }
}
