import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { EdgeError } from '../../src/errors.ts';
import { serviceKey, Target } from '../../src/targets/registry.ts';
import {
  deployTestConfig,
  newSecret,
  PROD_SECRET_ENV,
  readLines,
  signedRequest,
  STAGING_SECRET_ENV,
  startDeployApi,
  startHealthServer,
  type DeployApiServer,
} from '../support/deploy.ts';
import { FakeEngine } from '../support/fake-docker.ts';

const REPO = 'registry.example.test/acme/web';

describe('deploy swap with a fake engine', () => {
  const secret = newSecret();
  const stagingSecret = newSecret();
  let engine: FakeEngine;
  let api: DeployApiServer;
  let health: Awaited<ReturnType<typeof startHealthServer>>;
  let healthStatus: number;
  let oldId: string;
  let oldTarget: Target;

  async function setup(
    services: Parameters<typeof deployTestConfig>[0]['services'] = {},
  ): Promise<void> {
    const config = deployTestConfig({ repository: REPO, port: health.port, services });
    api = await startDeployApi(config, {
      engine,
      env: { [PROD_SECRET_ENV]: secret, [STAGING_SECRET_ENV]: stagingSecret },
    });
    oldTarget = new Target(`http://127.0.0.1:${health.port}`, oldId);
    api.context.targets.switch(serviceKey('web'), oldTarget);
  }

  async function deploy(
    image = `${REPO}:v2`,
    extra: Record<string, unknown> = {},
    timestamp?: number,
  ) {
    const body = { service: 'web', image, ...extra };
    const response = await signedRequest(api.url, '/_edge/deploy', { body, secret, timestamp });
    const lines = await readLines(response);
    return { response, lines, result: lines.at(-1)! };
  }

  beforeEach(async () => {
    healthStatus = 200;
    health = await startHealthServer((req, res) => {
      res.writeHead(healthStatus);
      res.end();
    });
    engine = new FakeEngine();
    oldId = engine.addContainer({ name: 'svc-web', image: `${REPO}:v1`, env: ['FOO=bar'] });
  });

  afterEach(async () => {
    await api.close();
    await health.close();
  });

  it('swaps the container in order', async () => {
    await setup();

    const { response, lines, result } = await deploy();

    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'application/x-ndjson; charset=utf-8');
    assert.equal(result.result, 'succeeded', JSON.stringify(result));
    const done = lines.filter((line) => line.status === 'ok').map((line) => line.step);
    assert.deepEqual(done, [
      'inspect',
      'pull',
      'create',
      'start',
      'health',
      'switch',
      'drain',
      'remove-old',
      'rename',
    ]);
    for (const line of lines.filter((l) => l.status === 'ok'))
      assert.equal(typeof line.durationMs, 'number');

    const current = api.context.targets.slot(serviceKey('web')).current!;
    assert.notEqual(current.id, oldId);
    assert.equal(oldTarget.draining, true);
    assert.equal(engine.find('svc-web')?.Id, current.id);
    assert.equal(engine.find(oldId), undefined);
    assert.ok(engine.find('svc-web')!.Config.Env!.includes('FOO=bar'));
  });

  it('records the deploy with both digests', async () => {
    await setup();
    const { result } = await deploy(`${REPO}:v2`, { commit: 'abc123', ref: 'main' });

    const record = api.deploys!.history('web')[0]!;

    assert.equal(record.id, result.id);
    assert.equal(record.state, 'succeeded');
    assert.equal(record.commit, 'abc123');
    assert.equal(record.ref, 'main');
    assert.equal(record.previousImage, `${REPO}:v1`);
    assert.match(record.previousDigest ?? '', /^sha256:/);
    assert.match(record.digest ?? '', /^sha256:/);
    assert.notEqual(record.digest, record.previousDigest);
  });

  it('creates the container only after the pull finished', async () => {
    engine.pullDelayMs = 150;
    await setup();

    await deploy();

    const pulled = engine.calls.indexOf(`pulled ${REPO}:v2`);
    const created = engine.calls.findIndex((call) => call.startsWith('create '));
    assert.ok(pulled >= 0, engine.calls.join('\n'));
    assert.ok(created > pulled, engine.calls.join('\n'));
  });

  it('leaves the old container when the pull fails', async () => {
    engine.pullError = new EdgeError(
      'EDGE_PULL_FAILED',
      `pulling image ${REPO}:v3: manifest unknown`,
      { status: 502 },
    );
    await setup();

    const { result } = await deploy(`${REPO}:v3`);

    assert.equal(result.result, 'failed');
    assert.equal(result.failedStep, 'pull');
    assert.equal(result.error, `pulling image ${REPO}:v3: manifest unknown`);
    assert.deepEqual(engine.mutations(), []);
    assert.equal(api.context.targets.slot(serviceKey('web')).current, oldTarget);
    assert.equal(oldTarget.draining, false);
  });

  it('fails with exit code and last log line for a crashing image', async () => {
    engine.addImage(`${REPO}:broken`);
    engine.behaviours.set(`${REPO}:broken`, { exitCode: 3, logs: 'starting\nboom\n' });
    await setup();

    const { result } = await deploy(`${REPO}:broken`);

    assert.equal(result.failedStep, 'health');
    assert.match(String(result.error), /exit code 3, last log line: boom/);
    assertOldServing();
  });

  it('names HTTP 400 from the health check', async () => {
    healthStatus = 400;
    await setup();

    const { result } = await deploy();

    assert.equal(result.failedStep, 'health');
    assert.match(String(result.error), /health check returned HTTP 400/);
    assertOldServing();
  });

  it('probes with the site host and forwarded proto', async () => {
    await setup();
    await deploy();

    const probe = health.requests.at(-1)!;
    assert.equal(probe.host, 'app.example.test');
    assert.equal(probe['x-forwarded-proto'], 'https');
    assert.equal(probe['user-agent'], 'caliente-edge-healthcheck');
  });

  it('probes with the configured health host', async () => {
    await setup({
      web: {
        health: { path: '/health', host: 'api.example.test', intervalMs: 20, timeoutMs: 1_000 },
      },
    });
    await deploy();

    assert.equal(health.requests.at(-1)!.host, 'api.example.test');
  });

  it('counts a redirect as unhealthy', async () => {
    healthStatus = 301;
    await setup();

    const { result } = await deploy();

    assert.match(String(result.error), /health check returned HTTP 301/);
    assertOldServing();
  });

  it('names a missing network before touching containers', async () => {
    engine.networks.delete('front');
    await setup();

    const { result } = await deploy();

    assert.equal(result.failedStep, 'inspect');
    assert.match(String(result.error), /network front of container svc-web not found/);
    assert.deepEqual(engine.mutations(), []);
  });

  it('names the network when create fails on it', async () => {
    engine.createError = Object.assign(
      new Error('(HTTP code 404) no such container - network app_net not found '),
      {
        statusCode: 404,
      },
    );
    await setup();

    const { result } = await deploy();

    assert.equal(result.failedStep, 'create');
    assert.match(String(result.error), /network app_net not found/);
    assertOldServing();
  });

  it('aborts on a failing pre-deploy command', async () => {
    await setup({ web: { preDeploy: ['migrate', '2'] } });

    const { result } = await deploy();

    assert.equal(result.failedStep, 'pre-deploy');
    assert.match(String(result.error), /exited with code 2: migration failed: relation missing/);
    assert.equal(engine.containers.size, 1, 'the one-off container was removed');
    assertOldServing();
  });

  it('runs a passing pre-deploy command before create', async () => {
    await setup({ web: { preDeploy: ['migrate', '0'] } });

    const { result, lines } = await deploy();

    assert.equal(result.result, 'succeeded');
    const steps = lines.filter((line) => line.status === 'ok').map((line) => line.step);
    assert.ok(steps.indexOf('pre-deploy') < steps.indexOf('create'));
  });

  it('answers 409 with the running deploy id', async () => {
    engine.pullDelayMs = 300;
    await setup();

    const first = signedRequest(api.url, '/_edge/deploy', {
      body: { service: 'web', image: `${REPO}:v2` },
      secret,
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const second = await signedRequest(api.url, '/_edge/deploy', {
      body: { service: 'web', image: `${REPO}:v3` },
      secret,
    });
    const payload = (await second.json()) as { error: { code: string; deployId: string } };
    const firstResponse = await first;
    const firstLines = await readLines(firstResponse);

    assert.equal(second.status, 409);
    assert.equal(payload.error.code, 'EDGE_DEPLOY_IN_PROGRESS');
    assert.equal(payload.error.deployId, firstResponse.headers.get('x-edge-deploy-id'));
    assert.equal(firstLines.at(-1)!.result, 'succeeded');
  });

  it('returns the earlier result for a repeated idempotency key', async () => {
    await setup();
    // A retry is signed anew. Distinct timestamps keep the two signatures distinct even when
    // both requests fall within the same second.
    const signedAt = Math.floor(Date.now() / 1000);
    const first = await deploy(`${REPO}:v2`, { idempotencyKey: 'run-42' }, signedAt - 10);
    const callsAfterFirst = engine.calls.length;

    const again = await deploy(`${REPO}:v2`, { idempotencyKey: 'run-42' }, signedAt);

    assert.deepEqual(again.result, first.result);
    assert.equal(engine.calls.length, callsAfterFirst);
  });

  it('rejects a reused key with another image', async () => {
    await setup();
    const signedAt = Math.floor(Date.now() / 1000);
    const first = await deploy(`${REPO}:v2`, { idempotencyKey: 'run-43' }, signedAt - 10);
    const callsAfterFirst = engine.calls.length;

    const body = { service: 'web', image: `${REPO}:v3`, idempotencyKey: 'run-43' };
    const again = await signedRequest(api.url, '/_edge/deploy', { body, secret });
    const payload = (await again.json()) as {
      error: { code: string; message: string; deployId: string };
    };

    assert.equal(again.status, 422);
    assert.equal(payload.error.code, 'EDGE_DEPLOY_KEY_REUSED');
    assert.equal(payload.error.deployId, first.result.id);
    assert.equal(
      payload.error.message,
      `idempotencyKey run-43 was already used by deploy ${String(first.result.id)} of service web ` +
        `with image ${REPO}:v2; use a new key for a different deploy`,
    );
    assert.equal(engine.calls.length, callsAfterFirst);
  });

  it('rejects a reused key while the first deploy runs', async () => {
    engine.pullDelayMs = 300;
    await setup();

    const first = deploy(`${REPO}:v2`, { idempotencyKey: 'run-44' });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const body = { service: 'web', image: `${REPO}:v3`, idempotencyKey: 'run-44' };
    const again = await signedRequest(api.url, '/_edge/deploy', { body, secret });
    const payload = (await again.json()) as { error: { code: string } };

    assert.equal(again.status, 422);
    assert.equal(payload.error.code, 'EDGE_DEPLOY_KEY_REUSED');
    assert.equal((await first).result.result, 'succeeded');
  });

  it('rejects a reused key for another service', async () => {
    await setup({ 'web-staging': { environment: 'prod' } });
    await deploy(`${REPO}:v2`, { idempotencyKey: 'run-45' });
    const callsAfterFirst = engine.calls.length;

    const body = { service: 'web-staging', image: `${REPO}:v2`, idempotencyKey: 'run-45' };
    const again = await signedRequest(api.url, '/_edge/deploy', { body, secret });
    const payload = (await again.json()) as { error: { code: string; message: string } };

    assert.equal(again.status, 422);
    assert.equal(payload.error.code, 'EDGE_DEPLOY_KEY_REUSED');
    assert.match(payload.error.message, /of service web with image/);
    assert.equal(engine.calls.length, callsAfterFirst);
  });

  it('allows the same key in another environment', async () => {
    engine.addContainer({ name: 'svc-web-staging', image: `${REPO}:v1` });
    await setup();
    await deploy(`${REPO}:v2`, { idempotencyKey: 'run-46' });

    const body = { service: 'web-staging', image: `${REPO}:v3`, idempotencyKey: 'run-46' };
    const response = await signedRequest(api.url, '/_edge/deploy', { body, secret: stagingSecret });
    const lines = await readLines(response);

    assert.equal(response.status, 200);
    assert.equal(lines.at(-1)!.service, 'web-staging');
    assert.equal(lines.at(-1)!.image, `${REPO}:v3`);
  });

  it('answers 503 while Docker is unreachable', async () => {
    engine.reachable = false;
    await setup();

    const response = await signedRequest(api.url, '/_edge/deploy', {
      body: { service: 'web', image: `${REPO}:v2` },
      secret,
    });
    const payload = (await response.json()) as { error: { code: string; message: string } };

    assert.equal(response.status, 503);
    assert.equal(payload.error.code, 'EDGE_DOCKER_UNAVAILABLE');
    assert.match(payload.error.message, /docker engine unreachable at \/fake\/docker\.sock/);
    assertOldServing();
  });

  it('rolls back to the previous digest', async () => {
    await setup();
    await deploy();
    const previous = api.deploys!.previousDigest('web');

    const response = await signedRequest(api.url, '/_edge/rollback', {
      body: { service: 'web' },
      secret,
    });
    const lines = await readLines(response);

    assert.equal(lines.at(-1)!.result, 'succeeded', JSON.stringify(lines.at(-1)));
    assert.equal(lines.at(-1)!.image, `${REPO}@${previous}`);
    assert.equal(api.deploys!.history('web')[0]!.rollback, true);
  });

  it('serves the status of a deploy', async () => {
    await setup();
    const { result } = await deploy();

    const response = await signedRequest(api.url, `/_edge/deploy/${result.id}`, { secret });
    const record = (await response.json()) as { id: string; state: string; steps: unknown[] };

    assert.equal(response.status, 200);
    assert.equal(record.id, result.id);
    assert.equal(record.state, 'succeeded');
    assert.equal(record.steps.length, 9);
  });

  function assertOldServing(): void {
    assert.equal(api.context.targets.slot(serviceKey('web')).current, oldTarget);
    assert.equal(oldTarget.draining, false);
    assert.equal(engine.find('svc-web')?.Id, oldId);
    assert.equal(engine.find(oldId)?.State.Running, true);
    assert.equal(engine.containers.size, 1, 'every container the deploy created was removed');
    assert.ok(!engine.calls.includes(`stop ${oldId}`));
  }
});
