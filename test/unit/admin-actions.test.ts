import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { registerAdminRoutes } from '../../src/admin/index.ts';
import {
  AdminClient,
  fullContext,
  startApiServer,
  testEnv,
  type ApiServer,
} from './admin-fixtures.ts';

describe('admin actions', () => {
  let server: ApiServer;
  let context: ReturnType<typeof fullContext>;
  let client: AdminClient;
  let csrf: string;

  before(async () => {
    context = fullContext();
    context.certificates.statuses.push({
      names: ['static.example.test'],
      state: 'static',
      directory: 'file',
      notAfter: new Date(Date.now() + 90 * 86_400_000).toISOString(),
    });
    registerAdminRoutes(context, { env: await testEnv() });
    server = await startApiServer(context);
    client = new AdminClient(server.origin);
    await client.login();
    csrf = await client.csrfToken();
  });
  after(() => server.close());

  it('rejects a rollback without a CSRF token', async () => {
    const response = await client.post('/_edge/actions/rollback', {
      service: 'web',
      confirm: 'yes',
    });
    assert.equal(response.status, 403);
    assert.match(response.text, /CSRF/);
    assert.deepEqual(context.deploys.rolledBack, []);
  });

  it('rejects a rollback with a wrong CSRF token', async () => {
    const wrong = `${csrf.slice(0, -1)}${csrf.endsWith('A') ? 'B' : 'A'}`;
    const response = await client.post('/_edge/actions/rollback', {
      service: 'web',
      confirm: 'yes',
      csrf: wrong,
    });
    assert.equal(response.status, 403);
    assert.deepEqual(context.deploys.rolledBack, []);
  });

  it('rejects another session token', async () => {
    const other = new AdminClient(server.origin);
    await other.login();
    const otherToken = await other.csrfToken();
    assert.notEqual(otherToken, csrf);

    const response = await client.post('/_edge/actions/rollback', {
      service: 'web',
      confirm: 'yes',
      csrf: otherToken,
    });
    assert.equal(response.status, 403);
    assert.deepEqual(context.deploys.rolledBack, []);
  });

  it('rejects an action without a session', async () => {
    const anonymous = new AdminClient(server.origin);
    const response = await anonymous.post('/_edge/actions/rollback', {
      service: 'web',
      confirm: 'yes',
      csrf,
    });
    assert.equal(response.status, 401);
    assert.deepEqual(context.deploys.rolledBack, []);
  });

  it('rejects a form from another origin', async () => {
    const response = await client.post(
      '/_edge/actions/rollback',
      { service: 'web', confirm: 'yes', csrf },
      { origin: 'https://evil.example' },
    );
    assert.equal(response.status, 403);
    assert.deepEqual(context.deploys.rolledBack, []);
  });

  it('asks for confirmation before a rollback', async () => {
    const response = await client.post('/_edge/actions/rollback', { service: 'web', csrf });
    assert.equal(response.status, 200);
    assert.match(response.text, /Please confirm/);
    assert.match(response.text, /name="confirm" value="yes"/);
    assert.match(response.text, /name="service" value="web"/);
    assert.deepEqual(context.deploys.rolledBack, []);
  });

  it('rolls back after confirmation and shows the outcome once', async () => {
    const response = await client.post('/_edge/actions/rollback', {
      service: 'web',
      csrf,
      confirm: 'yes',
    });
    assert.equal(response.status, 303);
    assert.equal(response.headers.location, '/_edge/');
    assert.deepEqual(context.deploys.rolledBack, ['web']);

    const page = await client.get('/_edge/');
    assert.match(page.text, /Rollback of web succeeded/);
    const again = await client.get('/_edge/');
    assert.doesNotMatch(again.text, /Rollback of web succeeded/);
  });

  it('reports a failed rollback', async () => {
    const original = context.deploys.rollback.bind(context.deploys);
    context.deploys.rollback = async () => {
      throw new Error('pulling image registry.example.test/web: manifest unknown');
    };
    try {
      const response = await client.post('/_edge/actions/rollback', {
        service: 'web',
        csrf,
        confirm: 'yes',
      });
      assert.equal(response.status, 303);
      const page = await client.get('/_edge/');
      assert.match(page.text, /manifest unknown/);
    } finally {
      context.deploys.rollback = original;
    }
  });

  it('rejects a rollback of an unknown service', async () => {
    const response = await client.post('/_edge/actions/rollback', {
      service: 'nope',
      csrf,
      confirm: 'yes',
    });
    assert.equal(response.status, 404);
    assert.match(response.text, /unknown service &quot;nope&quot;/);
  });

  it('rejects a rollback without a previous digest', async () => {
    context.deploys.previous.delete('web');
    try {
      const response = await client.post('/_edge/actions/rollback', {
        service: 'web',
        csrf,
        confirm: 'yes',
      });
      assert.equal(response.status, 409);
    } finally {
      context.deploys.previous.set(
        'web',
        'sha256:4141414141414141414141414141414141414141414141414141414141414141',
      );
    }
  });

  it('renews a certificate after confirmation', async () => {
    const unconfirmed = await client.post('/_edge/actions/renew', {
      name: 'app.example.test',
      csrf,
    });
    assert.equal(unconfirmed.status, 200);
    assert.match(unconfirmed.text, /Renew the certificate for app.example.test now\?/);
    assert.deepEqual(context.certificates.renewed, []);

    const response = await client.post('/_edge/actions/renew', {
      name: 'app.example.test',
      csrf,
      confirm: 'yes',
    });
    assert.equal(response.status, 303);
    assert.deepEqual(context.certificates.renewed, ['app.example.test']);
  });

  it('rejects a renewal of a certificate from a file', async () => {
    const response = await client.post('/_edge/actions/renew', {
      name: 'static.example.test',
      csrf,
      confirm: 'yes',
    });
    assert.equal(response.status, 409);
    assert.deepEqual(context.certificates.renewed, ['app.example.test']);
  });

  it('rejects a form body that is not urlencoded', async () => {
    const response = await client.post(
      '/_edge/actions/renew',
      {},
      { 'content-type': 'application/json' },
    );
    assert.equal(response.status, 415);
  });

  it('puts the confirmation question and token on every action form', async () => {
    const page = await client.get('/_edge/');
    const forms =
      page.text.match(/<form[^>]*action="\/_edge\/actions\/[^"]+"[\s\S]*?<\/form>/g) ?? [];
    assert.equal(forms.length, 3, 'one rollback form and a renew form per ACME certificate');
    for (const form of forms) {
      assert.match(form, /method="post"/);
      assert.match(form, /data-confirm="[^"]+"/);
      assert.ok(form.includes(`name="csrf" value="${csrf}"`));
    }
  });
});
