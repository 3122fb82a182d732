import { dockerStatus, type DockerEngine } from '../docker/engine.ts';
import { DEPLOY_LABEL } from '../docker/recreate.ts';
import { EdgeError, errorMessage } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { DeployJournal, DeployStore } from './store.ts';

/** Removes every container a deploy created (new service container, pre-deploy runs), except `keepId`. */
export async function removeDeployContainers(
  engine: DockerEngine,
  deployId: string,
  keepId?: string,
): Promise<number> {
  const created = (await engine.listContainers()).filter(
    (summary) => summary.Labels?.[DEPLOY_LABEL] === deployId && summary.Id !== keepId,
  );
  for (const summary of created) await engine.removeContainer(summary.Id);
  return created.length;
}

/**
 * Gives container `id` the service's canonical name. A container that is not running but still
 * has the name (left over from a failed start or an interrupted deploy) is removed first.
 */
export async function renameToCanonical(
  engine: DockerEngine,
  id: string,
  name: string,
): Promise<void> {
  const holder = await engine.inspectContainer(name);
  if (holder?.Id === id) return;
  if (holder !== undefined) {
    if (holder.State.Running) {
      throw new EdgeError(
        'EDGE_DEPLOY_NAME_TAKEN',
        `cannot rename the new container to ${name}: running container ${holder.Id.slice(0, 12)} holds the name`,
        { status: 409 },
      );
    }
    await engine.removeContainer(holder.Id);
  }

  try {
    await engine.renameContainer(id, name);
  } catch (error) {
    if (dockerStatus(error) !== 409) throw error;
    throw new EdgeError(
      'EDGE_DEPLOY_NAME_TAKEN',
      `cannot rename the new container to ${name}: the name is taken`,
      {
        status: 409,
        cause: error,
      },
    );
  }
}

/**
 * Finishes or undoes a deploy the edge did not see to the end, so that exactly one container of
 * the service serves afterwards. Before the switch, the old container stays and everything the
 * deploy created goes. After it, the new container stays and the old one goes.
 */
export async function recoverJournal(
  engine: DockerEngine,
  store: DeployStore,
  journal: DeployJournal,
  containerName: string,
  logger: Logger,
): Promise<void> {
  const newInfo = journal.newContainerId
    ? await engine.inspectContainer(journal.newContainerId)
    : undefined;
  const old = await engine.inspectContainer(journal.oldContainerId);
  // After the switch the new container passed its health check, so it is kept unless it stopped
  // and the old one is still there to take over.
  const keepNew =
    journal.switched && newInfo !== undefined && (newInfo.State.Running || old === undefined);

  if (keepNew) {
    if (!newInfo.State.Running) await engine.startContainer(newInfo.Id);
    await removeDeployContainers(engine, journal.id, journal.newContainerId);
    await engine.stopContainer(journal.oldContainerId);
    await engine.removeContainer(journal.oldContainerId);
    await renameToCanonical(engine, journal.newContainerId!, containerName);
  } else {
    await removeDeployContainers(engine, journal.id);
    if (old !== undefined && !old.State.Running) await engine.startContainer(old.Id);
  }

  markRecovered(store, journal, keepNew);
  store.clearJournal(journal.service);
  logger.warn(
    { service: journal.service, deployId: journal.id, kept: keepNew ? 'new' : 'old' },
    'recovered interrupted deploy',
  );
}

/** Recovers every journal left by an earlier run of the edge; failures are logged and kept. */
export async function recoverAll(
  engine: DockerEngine,
  store: DeployStore,
  containerNames: Record<string, string>,
  logger: Logger,
): Promise<void> {
  for (const journal of store.journals()) {
    const name = containerNames[journal.service];
    if (name === undefined) {
      store.clearJournal(journal.service);
      continue;
    }
    try {
      await recoverJournal(engine, store, journal, name, logger);
    } catch (error) {
      logger.error(
        { service: journal.service, deployId: journal.id, err: errorMessage(error) },
        'recovering interrupted deploy failed, retrying before the next deploy',
      );
    }
  }
}

function markRecovered(store: DeployStore, journal: DeployJournal, keptNew: boolean): void {
  const entry = store.find(journal.id);
  if (entry === undefined || entry.state !== 'running') return;

  const now = new Date();
  entry.finishedAt = now.toISOString();
  entry.durationMs = now.getTime() - Date.parse(entry.startedAt);
  entry.steps.push({
    name: 'recover',
    status: 'ok',
    message: keptNew ? 'finished after an edge restart' : 'rolled back after an edge restart',
  });
  if (keptNew) {
    entry.state = 'succeeded';
  } else {
    entry.state = 'failed';
    entry.failedStep = entry.steps.find((step) => step.status === 'running')?.name ?? 'recover';
    entry.error = 'the edge stopped during the deploy; the old container kept serving';
  }
  for (const step of entry.steps) if (step.status === 'running') step.status = 'failed';
  store.saveRecord(entry);
}
