import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { deployCommand } from '../../src/deploy/cli.ts';
import { createSelfSignedCertificate } from '../../src/tls/self-signed.ts';
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

  it('refuses plain http:// except on loopback', async () => {
    const result = await runCli(
      ['--url', 'http://app.example.test', '--service', 'web', '--image', `${REPO}:v2`],
      { EDGE_DEPLOY_SECRET: secret },
    );

    assert.equal(result.code, 2);
    assert.match(result.stderr, /--url must be https:\/\/ \(plain http:\/\/ only for a loopback/);
  });

  it('names the value of a --url that is not a URL', async () => {
    const result = await runCli(['--url', 'notaurl', '--service', 'web', '--image', 'x:1'], {
      EDGE_DEPLOY_SECRET: secret,
    });

    assert.equal(result.code, 2);
    assert.match(result.stderr, /--url must be an absolute URL .*, got notaurl/);
  });

  it('names a --ca file that is missing or holds no certificate', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'edge-cli-ca-'));
    const notPem = path.join(dir, 'hostname');
    writeFileSync(notPem, 'not a certificate\n');
    try {
      const args = ['--url', 'https://127.0.0.1:1', '--service', 'web', '--image', 'x:1'];
      const missing = await runCli([...args, '--ca', path.join(dir, 'none.pem')], {
        EDGE_DEPLOY_SECRET: secret,
      });
      assert.equal(missing.code, 2);
      assert.match(missing.stderr, /--ca .*none\.pem cannot be read: .*ENOENT/);

      const wrong = await runCli([...args, '--ca', notPem], { EDGE_DEPLOY_SECRET: secret });
      assert.equal(wrong.code, 2);
      assert.match(wrong.stderr, /--ca .*hostname contains no PEM certificate/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('says which host name to use when the certificate names another', async () => {
    const pem = await createSelfSignedCertificate(['localhost']);
    const server = https.createServer({ cert: pem.cert, key: pem.key }, (_req, res) => res.end());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const dir = mkdtempSync(path.join(tmpdir(), 'edge-cli-ca-'));
    const caFile = path.join(dir, 'ca.pem');
    writeFileSync(caFile, pem.cert);
    try {
      const result = await runCli(
        [
          '--url',
          `https://127.0.0.1:${port}`,
          '--service',
          'web',
          '--image',
          'x:1',
          '--ca',
          caFile,
        ],
        { EDGE_DEPLOY_SECRET: secret },
      );

      assert.equal(result.code, 1);
      assert.match(result.stderr, /ERR_TLS_CERT_ALTNAME_INVALID/);
      assert.match(result.stderr, /use a host name the edge's certificate names in --url/);
      assert.doesNotMatch(result.stderr, /pass the CA/);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('says to pass --ca when the edge certificate is not trusted', async () => {
    const pem = await createSelfSignedCertificate(['localhost']);
    const server = https.createServer({ cert: pem.cert, key: pem.key }, (_req, res) => res.end());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      const result = await runCli(
        ['--url', `https://127.0.0.1:${port}`, '--service', 'web', '--image', 'x:1'],
        { EDGE_DEPLOY_SECRET: secret },
      );

      assert.equal(result.code, 1);
      assert.match(result.stderr, /not trusted; pass the CA that signed it with --ca FILE/);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
