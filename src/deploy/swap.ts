import type { EdgeConfig, ServiceConfig } from '../config/schema.ts';
import { credentialsFor } from '../docker/credentials.ts';
import { dockerMessage, type DockerEngine } from '../docker/engine.ts';
import { createFromPlan, DEPLOY_LABEL, planRecreate, SERVICE_LABEL } from '../docker/recreate.ts';
import {
  containerName,
  containerOrigin,
  repoDigest,
  serviceHost,
  serviceNetwork,
} from '../docker/service-container.ts';
import { EdgeError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { serviceKey, Target, type TargetRegistry } from '../targets/registry.ts';
import { waitUntilHealthy } from './health-wait.ts';
import { inspectCurrent, type CurrentContainer } from './preflight.ts';
import { runPreDeploy } from './pre-deploy.ts';
import { removeDeployContainers, renameToCanonical } from './recovery.ts';
import type { DeployRun } from './run.ts';
import type { DeployJournal, DeployStore } from './store.ts';

/** WebSocket close code for "service restart" (RFC 6455 registry, code 1012). */
export const SERVICE_RESTART_CLOSE_CODE = 1012;
/** Shortest gap between two pull progress lines. */
const PULL_PROGRESS_INTERVAL_MS = 2_000;

export interface SwapDependencies {
  engine: DockerEngine;
  config: EdgeConfig;
  targets: TargetRegistry;
  store: DeployStore;
  logger: Logger;
}

/**
 * Replaces the container of the run's service with one of the run's image, in the order that
 * keeps the old container serving until the new one is healthy: inspect, pull, pre-deploy,
 * create, start, health, switch, drain, remove-old, rename. Any failure before the switch
 * removes what the deploy created and leaves the old container untouched.
 */
export async function runSwap(deps: SwapDependencies, run: DeployRun): Promise<void> {
  const entry = run.entry;
  const service = deps.config.services[entry.service]!;

  const current = await run.step(
    'inspect',
    async () => {
      const found = await inspectCurrent(deps.engine, entry.service, service);
      entry.previousImage = found.info.Config.Image;
      entry.previousDigest = repoDigest(found.image, service.image);
      return found;
    },
    (found) =>
      `container ${containerName(found.info)} (${found.info.Id.slice(0, 12)}) runs ${entry.previousImage}`,
  );

  const journal: DeployJournal = {
    id: entry.id,
    service: entry.service,
    oldContainerId: current.info.Id,
    switched: false,
  };
  deps.store.saveJournal(journal);

  let origin: string;
  try {
    await run.step('pull', (progress) =>
      pullImage(deps, entry.image, service, progress, (digest) => (entry.digest = digest)),
    );
    if (service.preDeploy !== undefined) {
      await run.step('pre-deploy', () =>
        preDeploy(deps, current, entry.image, entry.service, entry.id, service),
      );
    }
    origin = await startNewContainer(deps, run, current, service, journal);
  } catch (error) {
    await removeDeployContainers(deps.engine, entry.id).catch((cleanupError: unknown) => {
      deps.logger.error(
        { deployId: entry.id, err: dockerMessage(cleanupError) },
        'removing new container failed',
      );
    });
    deps.store.clearJournal(entry.service);
    throw error;
  }

  await switchTraffic(deps, run, service, journal, origin, current);
  deps.store.clearJournal(entry.service);
}

async function pullImage(
  deps: SwapDependencies,
  image: string,
  service: ServiceConfig,
  progress: (message: string) => void,
  setDigest: (digest: string | undefined) => void,
): Promise<string> {
  const local = image.includes('@') ? await deps.engine.inspectImage(image) : undefined;
  if (local === undefined) {
    let layersDone = 0;
    let lastReport = Date.now();
    await deps.engine.pullImage(image, credentialsFor(deps.config, image), (event) => {
      if (event.status === 'Pull complete' || event.status === 'Already exists') layersDone++;
      if (Date.now() - lastReport < PULL_PROGRESS_INTERVAL_MS) return;
      lastReport = Date.now();
      progress(`${layersDone} layer(s) done${event.status ? `, ${event.status}` : ''}`);
    });
  }

  const pulled = local ?? (await deps.engine.inspectImage(image));
  if (pulled === undefined) {
    throw new EdgeError(
      'EDGE_PULL_FAILED',
      `pulling image ${image}: the pull ended but the image is not there`,
      {
        status: 502,
      },
    );
  }
  const digest = repoDigest(pulled, service.image);
  setDigest(digest);
  return `${local ? 'present locally' : 'pulled'}${digest ? `, digest ${digest}` : ''}`;
}

function preDeploy(
  deps: SwapDependencies,
  current: CurrentContainer,
  image: string,
  serviceName: string,
  deployId: string,
  service: ServiceConfig,
): Promise<string> {
  return runPreDeploy({
    engine: deps.engine,
    current,
    image,
    command: service.preDeploy!,
    service: serviceName,
    deployId,
    name: `${service.container}-predeploy-${deployId.slice(-6)}`,
    timeoutMs: service.preDeployTimeoutMs,
  });
}

/** Creates, starts and health-checks the new container; returns the origin to route to. */
async function startNewContainer(
  deps: SwapDependencies,
  run: DeployRun,
  current: CurrentContainer,
  service: ServiceConfig,
  journal: DeployJournal,
): Promise<string> {
  const entry = run.entry;
  const newId = await run.step('create', async () => {
    const plan = planRecreate(
      current.info,
      current.image,
      entry.image,
      `${service.container}-deploy-${entry.id.slice(-6)}`,
      {
        [SERVICE_LABEL]: entry.service,
        [DEPLOY_LABEL]: entry.id,
      },
    );
    try {
      return await createFromPlan(deps.engine, plan);
    } catch (error) {
      throw new EdgeError(
        'EDGE_DEPLOY_CREATE_FAILED',
        `creating container ${plan.options.name}: ${dockerMessage(error)}`,
        {
          status: 502,
          cause: error,
        },
      );
    }
  });
  deps.store.saveJournal({ ...journal, newContainerId: newId });
  journal.newContainerId = newId;

  await run.step('start', async () => {
    await deps.engine.startContainer(newId);
    return `container ${newId.slice(0, 12)} started`;
  });

  const healthy = await run.step(
    'health',
    (progress) =>
      waitUntilHealthy({
        engine: deps.engine,
        containerId: newId,
        network: serviceNetwork(deps.config, entry.service),
        port: service.port,
        path: service.health.path,
        host: service.health.host ?? serviceHost(deps.config, entry.service),
        intervalMs: service.health.intervalMs,
        timeoutMs: service.health.timeoutMs,
        onProgress: progress,
      }),
    (result) => result.message,
  );
  return containerOrigin(healthy.address, service.port);
}

async function switchTraffic(
  deps: SwapDependencies,
  run: DeployRun,
  service: ServiceConfig,
  journal: DeployJournal,
  origin: string,
  current: CurrentContainer,
): Promise<void> {
  const entry = run.entry;
  const newId = journal.newContainerId!;
  // Persisted first: from here on a restarted edge keeps the new container, not the old one.
  deps.store.saveJournal({ ...journal, switched: true });

  const previous = await run.step(
    'switch',
    async () => deps.targets.switch(serviceKey(entry.service), new Target(origin, newId)),
    () => `traffic goes to ${origin}`,
  );

  await run.step('drain', () => drainTarget(previous, newId, service));

  await run.step('remove-old', async () => {
    await deps.engine.stopContainer(current.info.Id);
    await deps.engine.removeContainer(current.info.Id);
    return `container ${current.info.Id.slice(0, 12)} removed`;
  });

  await run.step('rename', async () => {
    await renameToCanonical(deps.engine, newId, service.container);
    return `container ${newId.slice(0, 12)} is now ${service.container}`;
  });
}

async function drainTarget(
  previous: Target | undefined,
  newId: string,
  service: ServiceConfig,
): Promise<string> {
  if (previous === undefined || previous.id === newId) return 'no previous target';

  const inflight = previous.inflight;
  const sockets = previous.upgrades.size;
  const [idle] = await Promise.all([
    previous.drain(service.drainTimeoutMs),
    previous.closeUpgrades(
      SERVICE_RESTART_CLOSE_CODE,
      service.websocketCloseGraceMs,
      service.websocketCloseSpreadMs,
    ),
  ]);
  const requests = idle
    ? `${inflight} in-flight request(s) finished`
    : `drain timed out after ${service.drainTimeoutMs} ms with ${previous.inflight} request(s) in flight`;
  return `${requests}, ${sockets} WebSocket(s) closed with ${SERVICE_RESTART_CLOSE_CODE}`;
}
