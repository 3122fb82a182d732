import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { deployCommand } from '../../src/deploy/cli.ts';
import {
  deployTestConfig,
  newSecret,
  PROD_SECRET_ENV,
  startDeployApi,
  startHealthServer,
  type DeployApiServer,
} from '../support/deploy.ts';
import { FakeEngine } from '../support/fake-docker.ts';

const REPO = 'registry.example.test/acme/web';

/** Runs the command with stdout and stderr captured. */
async function runCli(argv: string[], env: Record<string, string | undefined>) {
  const out: string[] = [];
  const err: string[] = [];
  const io = {
    stdout: { write: (text: string) => out.push(text) },
    stderr: { write: (text: string) => err.push(text) },
    env: { ...env },
  };
  const code = await deployCommand(argv, io);
  return { code, stdout: out.join(''), stderr: err.join('') };
}

describe('deploy cli', () => {
  const secret = newSecret();
  let api: DeployApiServer;
  let health: Awaited<ReturnType<typeof startHealthServer>>;
  let engine: FakeEngine;

  before(async () => {
    health = await startHealthServer();
    engine = new FakeEngine();
    engine.addContainer({ name: 'svc-web', image: `${REPO}:v1` });
    engine.addImage(`${REPO}:broken`);
    engine.behaviours.set(`${REPO}:broken`, { exitCode: 3, logs: 'boom' });
    api = await startDeployApi(deployTestConfig({ repository: REPO, port: health.port }), {
      engine,
      env: { [PROD_SECRET_ENV]: secret },
    });
  });

  after(async () => {
    await api.close();
    await health.close();
  });

  it('streams the steps and exits 0 on success', async () => {
    const result = await runCli(
      ['--url', api.url, '--service', 'web', '--image', `${REPO}:v2`, '--commit', 'abc'],
      {
        EDGE_DEPLOY_SECRET: secret,
      },
    );

    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^pull ok \(\d+\.\d s\)/m);
    assert.match(result.stdout, /^deploy \S+ succeeded: registry\.example\.test\/acme\/web:v2/m);
    assert.equal(api.deploys!.history('web')[0]!.commit, 'abc');
  });

  it('exits 1 with the failing step', async () => {
    const result = await runCli(
      ['--url', api.url, '--service', 'web', '--image', `${REPO}:broken`],
      {
        EDGE_DEPLOY_SECRET: secret,
      },
    );

    assert.equal(result.code, 1);
    assert.match(
      result.stdout,
      /failed at step health: container exited, exit code 3, last log line: boom/,
    );
  });

  it('prints raw lines and reads the secret from --secret-env', async () => {
    const argv = [
      '--url',
      api.url,
      '--service',
      'web',
      '--image',
      `${REPO}:v3`,
      '--json',
      '--secret-env',
      'DEPLOY_TOKEN',
    ];
    const result = await runCli(argv, { DEPLOY_TOKEN: secret, EDGE_DEPLOY_SECRET: undefined });

    const last = JSON.parse(result.stdout.trim().split('\n').at(-1)!) as { result: string };
    assert.equal(result.code, 0, result.stderr);
    assert.equal(last.result, 'succeeded');
  });

  it('exits 1 with the reason of a rejection', async () => {
    const result = await runCli(['--url', api.url, '--service', 'web', '--image', `${REPO}:v2`], {
      EDGE_DEPLOY_SECRET: newSecret(),
    });

    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      /rejected the deploy with HTTP 401: invalid signature \(EDGE_DEPLOY_UNAUTHORIZED\)/,
    );
  });

  it('exits 2 without a secret', async () => {
    const result = await runCli(['--url', api.url, '--service', 'web', '--image', `${REPO}:v2`], {
      EDGE_DEPLOY_SECRET: undefined,
    });

    assert.equal(result.code, 2);
    assert.match(result.stderr, /the deploy secret is missing: set EDGE_DEPLOY_SECRET/);
  });
});
