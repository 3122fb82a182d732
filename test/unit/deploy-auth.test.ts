import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { parseConfig } from '../../src/config/load.ts';
import { checkImage } from '../../src/deploy/request.ts';
import { sign } from '../../src/deploy/signature.ts';
import { EdgeError } from '../../src/errors.ts';
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
import { countingEngine, FakeEngine } from '../support/fake-docker.ts';

const REPO = 'registry.example.test/acme/web';
const DIGEST = `sha256:${'ab'.repeat(32)}`;

describe('deploy auth', () => {
  const prodSecret = newSecret();
  const stagingSecret = newSecret();
  let api: DeployApiServer;
  let health: Awaited<ReturnType<typeof startHealthServer>>;
  let counter: ReturnType<typeof countingEngine>;
  let fake: FakeEngine;

  before(async () => {
    health = await startHealthServer();
    fake = new FakeEngine();
    fake.addContainer({ name: 'svc-web', image: `${REPO}:v1` });
    counter = countingEngine(fake);
    const config = deployTestConfig({
      repository: REPO,
      port: health.port,
      deploy: { maxFailedAttempts: 3 },
    });
    api = await startDeployApi(config, {
      engine: counter.engine,
      env: { [PROD_SECRET_ENV]: prodSecret, [STAGING_SECRET_ENV]: stagingSecret },
    });
  });

  after(async () => {
    await api.close();
    await health.close();
  });

  const body = { service: 'web', image: `${REPO}:v2` };
  let client = 0;
  /** A fresh client address per case, so the rate limit of one case does not leak into the next. */
  const fresh = () => ({ 'x-test-client': `10.0.0.${++client}` });

  async function rejected(response: Response, status: number, code: string): Promise<void> {
    const payload = (await response.json()) as { error: { code: string; message: string } };
    assert.equal(response.status, status, payload.error.message);
    assert.equal(payload.error.code, code);
    assert.equal(counter.count(), 0, 'no Docker call for a rejected request');
  }

  it('rejects a request without signature', async () => {
    const response = await signedRequest(api.url, '/_edge/deploy', { body, headers: fresh() });
    await rejected(response, 401, 'EDGE_DEPLOY_UNAUTHORIZED');
  });

  it('rejects a signature made with another secret', async () => {
    const response = await signedRequest(api.url, '/_edge/deploy', {
      body,
      secret: newSecret(),
      headers: fresh(),
    });
    await rejected(response, 401, 'EDGE_DEPLOY_UNAUTHORIZED');
  });

  it('rejects a signature over another body', async () => {
    const timestamp = Math.floor(Date.now() / 1000);
    const signature = sign(
      prodSecret,
      String(timestamp),
      JSON.stringify({ ...body, image: `${REPO}:v1` }),
    );
    const response = await signedRequest(api.url, '/_edge/deploy', {
      body,
      timestamp,
      signature,
      headers: fresh(),
    });
    await rejected(response, 401, 'EDGE_DEPLOY_UNAUTHORIZED');
  });

  it('rejects empty and truncated signatures', async () => {
    for (const signature of ['', 'sha256=', 'sha256=abc', 'undefined', 'null']) {
      const response = await signedRequest(api.url, '/_edge/deploy', {
        body,
        signature,
        headers: fresh(),
      });
      await rejected(response, 401, 'EDGE_DEPLOY_UNAUTHORIZED');
    }
  });

  it('rejects an expired timestamp', async () => {
    const timestamp = Math.floor(Date.now() / 1000) - 6 * 60;
    const response = await signedRequest(api.url, '/_edge/deploy', {
      body,
      secret: prodSecret,
      timestamp,
      headers: fresh(),
    });
    await rejected(response, 401, 'EDGE_DEPLOY_UNAUTHORIZED');
  });

  it('rejects a timestamp from the future', async () => {
    const timestamp = Math.floor(Date.now() / 1000) + 6 * 60;
    const response = await signedRequest(api.url, '/_edge/deploy', {
      body,
      secret: prodSecret,
      timestamp,
      headers: fresh(),
    });
    await rejected(response, 401, 'EDGE_DEPLOY_UNAUTHORIZED');
  });

  it('rejects the staging secret for a prod service', async () => {
    const response = await signedRequest(api.url, '/_edge/deploy', {
      body,
      secret: stagingSecret,
      headers: fresh(),
    });
    await rejected(response, 403, 'EDGE_DEPLOY_WRONG_ENVIRONMENT');
  });

  it('rejects plain HTTP', async () => {
    const headers = { ...fresh(), 'x-test-insecure': '1' };
    const response = await signedRequest(api.url, '/_edge/deploy', {
      body,
      secret: prodSecret,
      headers,
    });
    await rejected(response, 403, 'EDGE_DEPLOY_HTTPS_REQUIRED');
  });

  it('rejects images from other repositories and extra fields', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [
        { service: 'web', image: 'registry.example.test/acme/other:v2' },
        'EDGE_DEPLOY_IMAGE_REJECTED',
      ],
      [{ service: 'web', image: `${REPO}-evil:v2` }, 'EDGE_DEPLOY_IMAGE_REJECTED'],
      [{ service: 'web', image: `${REPO}:../v2` }, 'EDGE_DEPLOY_IMAGE_REJECTED'],
      [{ service: 'web', image: `${REPO}:v2 --privileged` }, 'EDGE_DEPLOY_IMAGE_REJECTED'],
      [{ service: 'web', image: `${REPO}@sha256:1234` }, 'EDGE_DEPLOY_IMAGE_REJECTED'],
      [{ service: 'web', image: REPO }, 'EDGE_DEPLOY_IMAGE_REJECTED'],
      [{ service: 'web', image: `${REPO}@${DIGEST}@evil.test/x:1` }, 'EDGE_DEPLOY_IMAGE_REJECTED'],
      [
        { service: 'web', image: `${REPO}:v2@${DIGEST}@evil.test/x:1` },
        'EDGE_DEPLOY_IMAGE_REJECTED',
      ],
      [{ service: 'web', image: `${REPO}:v2@evil.test/x:1` }, 'EDGE_DEPLOY_IMAGE_REJECTED'],
      [{ service: 'web', image: `${REPO}:v2`, env: ['ADMIN=1'] }, 'EDGE_DEPLOY_BAD_REQUEST'],
      [{ service: 'web', image: `${REPO}:v2`, command: ['sh'] }, 'EDGE_DEPLOY_BAD_REQUEST'],
      ['{"service":', 'EDGE_DEPLOY_BAD_REQUEST'] as unknown as [Record<string, unknown>, string],
    ];
    for (const [rejectedBody, code] of cases) {
      const response = await signedRequest(api.url, '/_edge/deploy', {
        body: rejectedBody,
        secret: prodSecret,
        headers: fresh(),
      });
      await rejected(response, 400, code);
    }
  });

  it('rejects partly matching image references', async () => {
    const images = [
      `${REPO}:v2\n`,
      `${REPO}:`,
      `${REPO}:.v2`,
      `${REPO}:-v2`,
      `${REPO}:v2:v3`,
      `${REPO}:${'a'.repeat(129)}`,
      `${REPO}/sub:v2`,
      `${REPO}@${DIGEST.toUpperCase()}`,
      `${REPO}@sha256:${'ab'.repeat(33)}`,
      `${REPO}@${DIGEST}:v2`,
      `${REPO}@`,
    ];
    for (const image of images) {
      const response = await signedRequest(api.url, '/_edge/deploy', {
        body: { service: 'web', image },
        secret: prodSecret,
        headers: fresh(),
      });
      await rejected(response, 400, 'EDGE_DEPLOY_IMAGE_REJECTED');
    }
  });

  it('rejects an unknown service', async () => {
    const response = await signedRequest(api.url, '/_edge/deploy', {
      body: { service: 'db', image: `${REPO}:v2` },
      secret: prodSecret,
      headers: fresh(),
    });
    await rejected(response, 404, 'EDGE_DEPLOY_UNKNOWN_SERVICE');
  });

  it('rate-limits an address after failed attempts', async () => {
    const headers = fresh();
    for (let i = 0; i < 3; i++) {
      const response = await signedRequest(api.url, '/_edge/deploy', {
        body,
        secret: newSecret(),
        headers,
      });
      assert.equal(response.status, 401);
      await response.body?.cancel();
    }

    const limited = await signedRequest(api.url, '/_edge/deploy', {
      body,
      secret: prodSecret,
      headers,
    });
    assert.ok(Number(limited.headers.get('retry-after')) > 0);
    await rejected(limited, 429, 'EDGE_DEPLOY_RATE_LIMITED');
  });

  it('does not count plain-HTTP attempts as failures', async () => {
    const headers = fresh();
    for (let i = 0; i < 5; i++) {
      const insecure = await signedRequest(api.url, '/_edge/deploy', {
        body: { service: 'web', note: 'plain' },
        secret: prodSecret,
        headers: { ...headers, 'x-test-insecure': '1' },
      });
      await rejected(insecure, 403, 'EDGE_DEPLOY_HTTPS_REQUIRED');
    }

    // maxFailedAttempts is 3: had those counted, this one would get 429.
    const secure = await signedRequest(api.url, '/_edge/deploy', {
      body: { service: 'web', note: 'plain' },
      secret: prodSecret,
      headers,
    });
    await rejected(secure, 400, 'EDGE_DEPLOY_BAD_REQUEST');
  });

  it('rate-limits an IPv6 /64 as one client', async () => {
    for (const address of ['2001:db8:7:1::1', '2001:db8:7:1::2', '2001:db8:7:1:aaaa::3']) {
      const response = await signedRequest(api.url, '/_edge/deploy', {
        body,
        secret: newSecret(),
        headers: { 'x-test-client': address },
      });
      assert.equal(response.status, 401);
      await response.body?.cancel();
    }

    const limited = await signedRequest(api.url, '/_edge/deploy', {
      body,
      secret: prodSecret,
      headers: { 'x-test-client': '2001:db8:7:1:ffff:ffff:ffff:ffff' },
    });
    await rejected(limited, 429, 'EDGE_DEPLOY_RATE_LIMITED');

    const otherPrefix = await signedRequest(api.url, '/_edge/deploy', {
      body: { service: 'web' },
      secret: prodSecret,
      headers: { 'x-test-client': '2001:db8:7:2::1' },
    });
    await rejected(otherPrefix, 400, 'EDGE_DEPLOY_BAD_REQUEST');
  });

  it('rejects a replayed request', async () => {
    const timestamp = Math.floor(Date.now() / 1000);
    const signature = sign(prodSecret, String(timestamp), JSON.stringify(body));
    const first = await signedRequest(api.url, '/_edge/deploy', {
      body,
      timestamp,
      signature,
      headers: fresh(),
    });
    const lines = await readLines(first);
    assert.equal(first.status, 200);
    assert.equal(lines.at(-1)?.result, 'succeeded', JSON.stringify(lines.at(-1)));
    const callsAfterFirst = counter.count();

    const replay = await signedRequest(api.url, '/_edge/deploy', {
      body,
      timestamp,
      signature,
      headers: fresh(),
    });
    const payload = (await replay.json()) as { error: { code: string; message: string } };

    assert.equal(replay.status, 401);
    assert.match(payload.error.message, /replayed/);
    assert.equal(counter.count(), callsAfterFirst, 'the replay made no Docker call');
  });

  it('signs reads over method and path', async () => {
    const list = await signedRequest(api.url, '/_edge/deploys', {
      secret: prodSecret,
      headers: fresh(),
    });
    const payload = (await list.json()) as { deploys: { service: string }[] };
    assert.equal(list.status, 200);
    assert.ok(payload.deploys.length >= 1);

    const timestamp = Math.floor(Date.now() / 1000);
    const signature = sign(prodSecret, String(timestamp), 'GET /_edge/deploys');
    const otherPath = await signedRequest(api.url, '/_edge/deploys?service=web', {
      timestamp,
      signature,
      headers: fresh(),
    });
    assert.equal(otherPath.status, 401);
    await otherPath.body?.cancel();
  });

  it('shows each secret only its own environment', async () => {
    const list = await signedRequest(api.url, '/_edge/deploys', {
      secret: stagingSecret,
      headers: fresh(),
    });
    const payload = (await list.json()) as { deploys: unknown[] };

    assert.equal(list.status, 200);
    assert.deepEqual(payload.deploys, []);
  });
});

describe('deploy image check', () => {
  const config = parseConfig({
    sites: [{ name: 'prod', hosts: ['app.example.test'], routes: [{ path: '/', service: 'web' }] }],
    services: {
      web: {
        container: 'svc-web',
        image: '127.0.0.1:5000/team/web',
        port: 80,
        environment: 'prod',
      },
    },
    deploy: { environments: { prod: { secretEnv: PROD_SECRET_ENV } } },
  });
  const service = config.services.web!;

  for (const image of [
    '127.0.0.1:5000/team/web:v2',
    `127.0.0.1:5000/team/web@${DIGEST}`,
    `127.0.0.1:5000/team/web:v2@${DIGEST}`,
    `127.0.0.1:5000/team/web:${'a'.repeat(128)}`,
    '127.0.0.1:5000/team/web:_v2.1-rc',
  ]) {
    it(`accepts ${image.slice(0, 60)}`, () => {
      assert.doesNotThrow(() => checkImage(image, service, 'web'));
    });
  }

  it('matches the repository literally', () => {
    assert.throws(
      () => checkImage('127x0x0x1:5000/team/web:v2', service, 'web'),
      (error: unknown) => error instanceof EdgeError && error.status === 400,
    );
  });
});

describe('deploy auth without secrets', () => {
  /** Starts the API with `env` and returns it with the log lines it writes. */
  async function startWith(env: Record<string, string>) {
    const lines: string[] = [];
    const logger = pino(
      { level: 'warn' },
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          lines.push(chunk.toString());
          done();
        },
      }),
    );
    const counter = countingEngine(new FakeEngine());
    const api = await startDeployApi(deployTestConfig({ repository: REPO, port: 1 }), {
      engine: counter.engine,
      env,
      logger,
    });
    return { api, counter, lines };
  }

  async function errorOf(response: Response) {
    return { status: response.status, body: (await response.json()) as unknown };
  }

  for (const [label, value] of [
    ['unset', undefined],
    ['empty', ''],
    ['too short', 'short'],
  ] as const) {
    it(`hides an environment whose secret is ${label}`, async () => {
      const env: Record<string, string> = { [STAGING_SECRET_ENV]: newSecret() };
      if (value !== undefined) env[PROD_SECRET_ENV] = value;
      const { api, counter, lines } = await startWith(env);

      try {
        // Reference: a wrong signature for a service of the enabled environment.
        const expected = await errorOf(
          await signedRequest(api.url, '/_edge/deploy', {
            body: { service: 'web-staging', image: `${REPO}:v2` },
            secret: newSecret(),
          }),
        );
        assert.equal(expected.status, 401);

        for (const secret of [value ?? '', 'undefined', 'null', newSecret()]) {
          const response = await signedRequest(api.url, '/_edge/deploy', {
            body: { service: 'web', image: `${REPO}:v2` },
            secret,
          });
          const text = await response.text();
          assert.deepEqual({ status: response.status, body: JSON.parse(text) }, expected);
          assert.doesNotMatch(text, new RegExp(PROD_SECRET_ENV));
          assert.doesNotMatch(text, /prod|disabled|shorter|unset/);
        }
        assert.equal(counter.count(), 0);
        assert.ok(lines.some((line) => line.includes('deploys disabled for environment prod')));
        const rejection = lines.find((line) => line.includes('deploy request rejected'))!;
        assert.match(rejection, /deploys are disabled for environment prod/);
      } finally {
        await api.close();
      }
    });
  }

  it('answers an unsigned request alike for every service', async () => {
    const { api } = await startWith({ [STAGING_SECRET_ENV]: newSecret() });

    try {
      const answers = [];
      for (const service of ['web', 'web-staging', 'db']) {
        const body = { service, image: `${REPO}:v2` };
        answers.push(await errorOf(await signedRequest(api.url, '/_edge/deploy', { body })));
      }
      assert.equal(answers[0]!.status, 401);
      assert.deepEqual(answers[1], answers[0]);
      assert.deepEqual(answers[2], answers[0]);
    } finally {
      await api.close();
    }
  });

  it('answers 401 when no environment has a secret', async () => {
    const { api, counter } = await startWith({});

    try {
      const response = await signedRequest(api.url, '/_edge/deploy', {
        body: { service: 'web-staging', image: `${REPO}:v2` },
        secret: newSecret(),
      });
      const text = await response.text();
      assert.equal(response.status, 401);
      assert.equal(
        (JSON.parse(text) as { error: { code: string } }).error.code,
        'EDGE_DEPLOY_UNAUTHORIZED',
      );
      assert.doesNotMatch(text, /disabled|secret/);
      assert.equal(counter.count(), 0);
    } finally {
      await api.close();
    }
  });
});
