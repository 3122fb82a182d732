import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { DEPLOY_LABEL, SERVICE_LABEL } from '../../src/docker/recreate.ts';
import { renameToCanonical } from '../../src/deploy/recovery.ts';
import { DeployStore, type DeployEntry } from '../../src/deploy/store.ts';
import { silentLogger } from '../../src/log.ts';
import { deployTestConfig, newSecret, PROD_SECRET_ENV, startDeployApi } from '../support/deploy.ts';
import { FakeEngine } from '../support/fake-docker.ts';

const REPO = 'registry.example.test/acme/web';

function runningEntry(id: string): DeployEntry {
  return {
    id,
    service: 'web',
    image: `${REPO}:v2`,
    state: 'running',
    startedAt: new Date().toISOString(),
    steps: [{ name: 'health', status: 'running' }],
  };
}

/** Leaves the state an edge killed mid-deploy would leave: a journal and two containers. */
function interruptedDeploy(switched: boolean) {
  const stateDir = mkdtempSync(path.join(tmpdir(), 'edge-state-'));
  const engine = new FakeEngine();
  const oldId = engine.addContainer({ name: 'svc-web', image: `${REPO}:v1` });
  const newId = engine.addContainer({
    name: 'svc-web-deploy-abc123',
    image: `${REPO}:v2`,
    labels: { [SERVICE_LABEL]: 'web', [DEPLOY_LABEL]: 'd-abc123' },
  });
  const store = new DeployStore(stateDir, 50, silentLogger);
  store.saveRecord(runningEntry('d-abc123'));
  store.saveJournal({
    id: 'd-abc123',
    service: 'web',
    oldContainerId: oldId,
    newContainerId: newId,
    switched,
  });
  return { stateDir, engine, oldId, newId };
}

describe('deploy recovery at startup', () => {
  it('keeps the old container when the switch had not happened', async () => {
    const { stateDir, engine, oldId, newId } = interruptedDeploy(false);

    const api = await startDeployApi(deployTestConfig({ repository: REPO, port: 1, stateDir }), {
      engine,
      env: { [PROD_SECRET_ENV]: newSecret() },
    });
    await api.close();

    assert.equal(engine.find(newId), undefined);
    assert.equal(engine.find('svc-web')?.Id, oldId);
    assert.equal(engine.containers.size, 1);
    const record = api.deploys!.history('web')[0]!;
    assert.equal(record.state, 'failed');
    assert.equal(record.failedStep, 'health');
    assert.deepEqual(new DeployStore(stateDir, 50, silentLogger).journals(), []);
  });

  it('keeps the new container once the switch happened', async () => {
    const { stateDir, engine, oldId, newId } = interruptedDeploy(true);

    const api = await startDeployApi(deployTestConfig({ repository: REPO, port: 1, stateDir }), {
      engine,
      env: { [PROD_SECRET_ENV]: newSecret() },
    });
    await api.close();

    assert.equal(engine.find(oldId), undefined);
    assert.equal(engine.find('svc-web')?.Id, newId);
    assert.equal(engine.containers.size, 1);
    assert.equal(api.deploys!.history('web')[0]!.state, 'succeeded');
  });
});

describe('deploy rename', () => {
  it('removes a stopped container holding the name', async () => {
    const engine = new FakeEngine();
    const staleId = engine.addContainer({ name: 'svc-web', image: `${REPO}:v1`, running: false });
    const newId = engine.addContainer({ name: 'svc-web-deploy-1', image: `${REPO}:v2` });

    await renameToCanonical(engine, newId, 'svc-web');

    assert.equal(engine.find(staleId), undefined);
    assert.equal(engine.find('svc-web')?.Id, newId);
  });

  it('refuses to take the name from a running container', async () => {
    const engine = new FakeEngine();
    engine.addContainer({ name: 'svc-web', image: `${REPO}:v1` });
    const newId = engine.addContainer({ name: 'svc-web-deploy-1', image: `${REPO}:v2` });

    await assert.rejects(
      renameToCanonical(engine, newId, 'svc-web'),
      /running container \w+ holds the name/,
    );
  });
});

describe('deploy store', () => {
  it('persists history across restarts', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'edge-state-'));
    const store = new DeployStore(dir, 50, silentLogger);
    store.saveRecord({ ...runningEntry('d-1'), state: 'succeeded' });

    const reopened = new DeployStore(dir, 50, silentLogger);

    assert.equal(reopened.find('d-1')?.state, 'succeeded');
  });

  it('keeps the newest records up to the limit', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'edge-state-'));
    const store = new DeployStore(dir, 2, silentLogger);
    for (const id of ['d-1', 'd-2', 'd-3']) store.saveRecord(runningEntry(id));

    assert.deepEqual(
      store.history('web').map((entry) => entry.id),
      ['d-3', 'd-2'],
    );
  });
});
