import type { EdgeContext } from '../context.ts';
import { DockerServiceRuntime } from '../docker/index.ts';
import type { DockerEngine } from '../docker/engine.ts';
import { errorMessage } from '../errors.ts';
import { registerDeployRoutes } from './api.ts';
import { DeployAuth } from './auth.ts';
import { recoverAll } from './recovery.ts';
import { EdgeDeployService, type DiscoveryControl } from './service.ts';
import { DeployStore } from './store.ts';

export { EdgeDeployService } from './service.ts';

export interface DeployServiceOptions {
  /** Engine to use instead of the Docker runtime's (tests). */
  engine?: DockerEngine;
  discovery?: DiscoveryControl;
  /** Environment the deploy secrets are read from. */
  env?: NodeJS.ProcessEnv;
  now?: () => number;
}

/**
 * Registers the deploy endpoints on the edge API and finishes or undoes deploys an earlier run
 * of the edge left unfinished. Returns undefined when no services are configured.
 */
export async function createDeployService(
  context: EdgeContext,
  options: DeployServiceOptions = {},
): Promise<EdgeDeployService | undefined> {
  const { config } = context;
  if (Object.keys(config.services).length === 0) return undefined;

  const logger = context.logger.child({ module: 'deploy' });
  const runtime = context.docker instanceof DockerServiceRuntime ? context.docker : undefined;
  const engine = options.engine ?? runtime?.engine;
  const discovery = options.discovery ?? runtime?.discovery;
  const store = new DeployStore(config.stateDir, config.deploy.historyLimit, logger);
  const auth = new DeployAuth({ config, logger, env: options.env, now: options.now });
  const deploys = new EdgeDeployService({
    config,
    engine,
    targets: context.targets,
    store,
    logger,
    discovery,
  });

  if (engine !== undefined && store.journals().length > 0) {
    const names = Object.fromEntries(
      Object.entries(config.services).map(([name, s]) => [name, s.container]),
    );
    await recoverAll(engine, store, names, logger).catch((error: unknown) => {
      logger.error({ err: errorMessage(error) }, 'recovering interrupted deploys failed');
    });
    await runtime?.discovery.refresh();
  }

  registerDeployRoutes({ api: context.api, config, auth, deploys, logger });
  return deploys;
}
