import type { DockerRuntime, EdgeContext } from '../context.ts';
import { errorMessage } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { ContainerStatus } from '../status.ts';
import { serviceKey } from '../targets/registry.ts';
import { ServiceDiscovery } from './discovery.ts';
import type { DockerEngine } from './engine.ts';
import {
  containerAddress,
  findServiceContainer,
  repoDigest,
  serviceNetwork,
} from './service-container.ts';

export type { DockerEngine } from './engine.ts';
export { ServiceDiscovery } from './discovery.ts';

export interface DockerRuntimeOptions {
  /** Engine to use instead of the configured socket (tests). */
  engine?: DockerEngine;
  /** First wait before reconnecting to the Docker event stream. */
  eventsRetryMs?: number;
}

/**
 * Connects to Docker when services are configured; returns undefined when there are none. An
 * unreachable Engine is not fatal: the edge keeps proxying and discovery keeps retrying.
 */
export async function createDockerRuntime(
  context: EdgeContext,
  options: DockerRuntimeOptions = {},
): Promise<DockerServiceRuntime | undefined> {
  if (Object.keys(context.config.services).length === 0) return undefined;

  const logger = context.logger.child({ module: 'docker' });
  const engine = options.engine ?? (await createDockerodeEngine(context.config.docker.socket));
  const runtime = new DockerServiceRuntime(context, engine, logger, options.eventsRetryMs);
  await runtime.start();
  return runtime;
}

/**
 * Creates the dockerode engine. dockerode is loaded here, only when services are configured,
 * because it and its dependencies cost several MB of memory.
 */
async function createDockerodeEngine(socket: string): Promise<DockerEngine> {
  const { DockerodeEngine } = await import('./dockerode-engine.ts');
  return new DockerodeEngine(socket);
}

/** Docker access of the edge: the engine, discovery of service containers, their status. */
export class DockerServiceRuntime implements DockerRuntime {
  readonly engine: DockerEngine;
  readonly discovery: ServiceDiscovery;
  private readonly context: EdgeContext;
  private readonly logger: Logger;

  constructor(context: EdgeContext, engine: DockerEngine, logger: Logger, eventsRetryMs?: number) {
    this.context = context;
    this.engine = engine;
    this.logger = logger;
    this.discovery = new ServiceDiscovery({
      engine,
      config: context.config,
      targets: context.targets,
      logger,
      retryMs: eventsRetryMs,
    });
  }

  async start(): Promise<void> {
    try {
      await this.engine.ping();
    } catch (error) {
      this.logger.error(
        { endpoint: this.engine.endpoint, err: errorMessage(error) },
        'docker engine unreachable, proxying continues and deploys answer 503',
      );
    }
    await this.discovery.start();
  }

  async containers(): Promise<ContainerStatus[]> {
    const statuses: ContainerStatus[] = [];
    for (const [name, service] of Object.entries(this.context.config.services)) {
      statuses.push(await this.containerStatus(name, service.container));
    }
    return statuses;
  }

  async stop(): Promise<void> {
    this.discovery.stop();
  }

  private async containerStatus(service: string, container: string): Promise<ContainerStatus> {
    const targetId = this.context.targets.slot(serviceKey(service)).current?.id;
    try {
      const info =
        (targetId !== undefined ? await this.engine.inspectContainer(targetId) : undefined) ??
        (await findServiceContainer(this.engine, service, container)) ??
        (await this.engine.inspectContainer(container));
      if (info === undefined) return { service, container, state: 'missing' };

      const image = await this.engine.inspectImage(info.Image);
      return {
        service,
        container: info.Name.replace(/^\//, ''),
        id: info.Id,
        image: info.Config.Image,
        digest: repoDigest(image, this.context.config.services[service]?.image ?? ''),
        state: info.State.Status,
        startedAt: info.State.StartedAt,
        restartCount: info.RestartCount,
        address: containerAddress(info, serviceNetwork(this.context.config, service)),
      };
    } catch (error) {
      return { service, container, state: `unknown: ${errorMessage(error)}` };
    }
  }
}
