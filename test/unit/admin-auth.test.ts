import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { registerAdminRoutes } from '../../src/admin/index.ts';
import {
  AdminClient,
  captureLogs,
  fullContext,
  startApiServer,
  testEnv,
  TEST_PASSWORD,
  type ApiServer,
} from './admin-fixtures.ts';

/** Strings from the fake status that must never reach an unauthenticated client. */
const STATUS_MARKERS = [
  'app.example.test',
  'web-prod',
  'registry.example.test',
  'ECONNREFUSED',
  'sha256:',
];

function assertNoStatusData(text: string): void {
  for (const marker of STATUS_MARKERS)
    assert.ok(!text.includes(marker), `response contains ${marker}`);
}

async function startAdmin(options: Parameters<typeof registerAdminRoutes>[1] = {}) {
  const context = fullContext();
  const logs = captureLogs();
  context.logger = logs.logger;
  registerAdminRoutes(context, { env: await testEnv(), ...options });
  const server = await startApiServer(context);
  return { context, server, logs };
}

describe('admin auth', () => {
  let server: ApiServer;

  before(async () => {
    ({ server } = await startAdmin());
  });
  after(() => server.close());

  it('serves health without login and without details', async () => {
    const response = await new AdminClient(server.origin).get('/_edge/health');
    assert.equal(response.status, 200);
    assert.equal(response.text, 'ok\n');
  });

  it('redirects the page to login without data', async () => {
    const response = await new AdminClient(server.origin).get('/_edge/');
    assert.equal(response.status, 303);
    assert.equal(response.headers.location, '/_edge/login');
    assertNoStatusData(response.text);
  });

  it('answers 401 for status and metrics without data', async () => {
    const client = new AdminClient(server.origin);
    for (const path of ['/_edge/status', '/_edge/metrics']) {
      const response = await client.get(path);
      assert.equal(response.status, 401, path);
      assert.match(String(response.headers['www-authenticate']), /^Basic /);
      assertNoStatusData(response.text);
      assert.ok(!response.text.includes('edge_http_requests_total'), `${path} leaks metrics`);
    }
  });

  it('ignores forwarding headers for authentication', async () => {
    const response = await new AdminClient(server.origin).get('/_edge/status', {
      'x-forwarded-for': '127.0.0.1',
      'x-real-ip': '127.0.0.1',
      forwarded: 'for=127.0.0.1',
    });
    assert.equal(response.status, 401);
    assertNoStatusData(response.text);
  });

  it('rejects a wrong password with 401', async () => {
    const client = new AdminClient(server.origin);
    const response = await client.post('/_edge/login', { password: `${TEST_PASSWORD}x` });
    assert.equal(response.status, 401);
    assert.match(response.text, /Wrong password/);
    assert.equal(response.headers['set-cookie'], undefined);
    assert.equal((await client.get('/_edge/status')).status, 401);
  });

  it('rejects an empty password', async () => {
    const response = await new AdminClient(server.origin).post('/_edge/login', { password: '' });
    assert.equal(response.status, 401);
    assert.equal(response.headers['set-cookie'], undefined);
  });

  it('sets a strict session cookie on login', async () => {
    const client = new AdminClient(server.origin);
    const response = await client.login();
    const cookie = String(response.headers['set-cookie']);
    assert.match(cookie, /^__Secure-edge_session=[A-Za-z0-9_-]{43};/);
    assert.match(cookie, /; HttpOnly/);
    assert.match(cookie, /; Secure/);
    assert.match(cookie, /; SameSite=Strict/);
    assert.match(cookie, /; Path=\/_edge;/);
    assert.equal(response.headers.location, '/_edge/');

    const status = await client.get('/_edge/status');
    assert.equal(status.status, 200);
    const page = await client.get('/_edge/');
    assert.equal(page.status, 200);
    assert.match(page.text, /web-prod/);
  });

  it('gives each login a new random session id', async () => {
    const first = new AdminClient(server.origin);
    const second = new AdminClient(server.origin);
    await first.login();
    await second.login();
    assert.notEqual(first.cookie, second.cookie);
  });

  it('rejects an unknown session cookie', async () => {
    const client = new AdminClient(server.origin);
    client.cookie = `__Secure-edge_session=${'A'.repeat(43)}`;
    assert.equal((await client.get('/_edge/status')).status, 401);
    assert.equal((await client.get('/_edge/')).status, 303);
  });

  it('logs out with the CSRF token', async () => {
    const client = new AdminClient(server.origin);
    await client.login();
    const sessionCookie = client.cookie!;
    const csrf = await client.csrfToken();

    const response = await client.post('/_edge/logout', { csrf });
    assert.equal(response.status, 303);
    assert.equal(response.headers.location, '/_edge/login');
    assert.match(String(response.headers['set-cookie']), /Max-Age=0/);

    const reused = new AdminClient(server.origin);
    reused.cookie = sessionCookie;
    assert.equal((await reused.get('/_edge/status')).status, 401, 'session ends on the server');
  });

  it('rejects logout without the CSRF token', async () => {
    const client = new AdminClient(server.origin);
    await client.login();
    const response = await client.post('/_edge/logout', {});
    assert.equal(response.status, 403);
    assert.equal((await client.get('/_edge/status')).status, 200, 'session still valid');
  });

  it('rejects a login form posted from another origin', async () => {
    const client = new AdminClient(server.origin);
    const response = await client.post(
      '/_edge/login',
      { password: TEST_PASSWORD },
      { origin: 'https://evil.example' },
    );
    assert.equal(response.status, 403);
    assert.equal(client.cookie, undefined);
  });

  it('checks Sec-Fetch-Site and Origin of the login form', async () => {
    const cases: [Record<string, string>, number][] = [
      [{ 'sec-fetch-site': 'cross-site' }, 403],
      [{ 'sec-fetch-site': 'same-site' }, 403],
      [{ 'sec-fetch-site': 'same-origin', origin: 'https://evil.example' }, 303],
      [{ origin: 'null' }, 403],
      [{ origin: new URL(server.origin).origin }, 303],
      [{}, 303],
    ];
    for (const [headers, expected] of cases) {
      const client = new AdminClient(server.origin);
      const response = await client.post('/_edge/login', { password: TEST_PASSWORD }, headers);
      assert.equal(response.status, expected, JSON.stringify(headers));
    }
  });

  it('sends a referrer policy that keeps Origin on its own forms', async () => {
    const response = await new AdminClient(server.origin).get('/_edge/login');
    assert.equal(response.headers['referrer-policy'], 'same-origin');
  });

  it('accepts HTTP Basic credentials for status and metrics', async () => {
    const client = new AdminClient(server.origin);
    const good = `Basic ${Buffer.from(`admin:${TEST_PASSWORD}`).toString('base64')}`;
    const bad = `Basic ${Buffer.from('admin:nope').toString('base64')}`;

    assert.equal((await client.get('/_edge/metrics', { authorization: good })).status, 200);
    assert.equal((await client.get('/_edge/status', { authorization: good })).status, 200);
    assert.equal((await client.get('/_edge/status', { authorization: bad })).status, 401);
    assert.equal(
      (await client.get('/_edge/', { authorization: good })).status,
      303,
      'page needs a login',
    );
  });
});

describe('admin login rate limit', () => {
  it('blocks the socket peer after the failure limit, whatever X-Forwarded-For says', async () => {
    const { server, logs } = await startAdmin({
      loginLimiter: { maxFailures: 3, windowMs: 60_000 },
    });
    try {
      const client = new AdminClient(server.origin);
      for (let attempt = 0; attempt < 3; attempt++) {
        const response = await client.post(
          '/_edge/login',
          { password: 'wrong-password' },
          { 'x-forwarded-for': `198.51.100.${attempt}` },
        );
        assert.equal(response.status, 401, `attempt ${attempt}`);
      }

      const blocked = await client.post(
        '/_edge/login',
        { password: TEST_PASSWORD },
        { 'x-forwarded-for': '198.51.100.99' },
      );
      assert.equal(blocked.status, 429, 'even the right password is refused while blocked');
      assert.ok(Number(blocked.headers['retry-after']) > 0);
      assert.equal(client.cookie, undefined);

      const basic = `Basic ${Buffer.from(`admin:${TEST_PASSWORD}`).toString('base64')}`;
      assert.equal((await client.get('/_edge/status', { authorization: basic })).status, 429);

      const failures = logs.lines.filter((line) => line.msg === 'admin login failed');
      assert.equal(failures.length, 3);
      assert.equal(failures[0]!.clientAddress, '127.0.0.1');
    } finally {
      await server.close();
    }
  });

  it('blocks a Basic credential verified before the block', async () => {
    const { server } = await startAdmin({
      loginLimiter: { maxFailures: 2, windowMs: 60_000 },
    });
    try {
      const client = new AdminClient(server.origin);
      const good = `Basic ${Buffer.from(`admin:${TEST_PASSWORD}`).toString('base64')}`;
      assert.equal((await client.get('/_edge/metrics', { authorization: good })).status, 200);

      for (let attempt = 0; attempt < 2; attempt++) {
        const response = await client.post('/_edge/login', { password: 'wrong-password' });
        assert.equal(response.status, 401, `attempt ${attempt}`);
      }

      const blocked = await client.get('/_edge/metrics', { authorization: good });
      assert.equal(blocked.status, 429, 'the remembered credential does not skip the block');
      assert.ok(Number(blocked.headers['retry-after']) > 0);
    } finally {
      await server.close();
    }
  });

  it('allows logins again after the window', async () => {
    let now = Date.now();
    const { server } = await startAdmin({
      now: () => now,
      loginLimiter: { maxFailures: 1, windowMs: 1000 },
    });
    try {
      const client = new AdminClient(server.origin);
      assert.equal((await client.post('/_edge/login', { password: 'wrong-password' })).status, 401);
      assert.equal((await client.post('/_edge/login', { password: TEST_PASSWORD })).status, 429);

      now += 1001;
      await client.login();
      assert.equal((await client.get('/_edge/status')).status, 200);
    } finally {
      await server.close();
    }
  });
});

describe('admin session expiry', () => {
  it('ends the session after sessionTtlMs', async () => {
    let now = Date.now();
    const { server, context } = await startAdmin({ now: () => now });
    try {
      const client = new AdminClient(server.origin);
      await client.login();
      assert.equal((await client.get('/_edge/status')).status, 200);

      now += context.config.admin.sessionTtlMs;
      assert.equal((await client.get('/_edge/status')).status, 401);
      assert.equal((await client.get('/_edge/')).status, 303);
    } finally {
      await server.close();
    }
  });
});

describe('admin without a password hash', () => {
  const cases: [string, NodeJS.ProcessEnv][] = [
    ['unset', {}],
    ['empty', { EDGE_ADMIN_PASSWORD_HASH: '' }],
    ['blank', { EDGE_ADMIN_PASSWORD_HASH: '   ' }],
    ['not a hash', { EDGE_ADMIN_PASSWORD_HASH: 'hunter2' }],
    [
      'weak parameters',
      { EDGE_ADMIN_PASSWORD_HASH: 'scrypt$2$1$1$c2FsdHNhbHQ=$a2V5a2V5a2V5a2V5a2V5a2V5' },
    ],
  ];

  for (const [name, env] of cases) {
    it(`stays closed when the hash is ${name}`, async () => {
      const context = fullContext();
      const logs = captureLogs();
      context.logger = logs.logger;
      registerAdminRoutes(context, { env });
      const server = await startApiServer(context);
      try {
        const client = new AdminClient(server.origin);
        for (const path of ['/_edge/', '/_edge/status', '/_edge/metrics', '/_edge/login']) {
          const response = await client.get(path);
          assert.equal(response.status, 503, path);
          assertNoStatusData(response.text);
        }
        const page = await client.get('/_edge/');
        assert.match(page.text, /EDGE_ADMIN_PASSWORD_HASH/);

        for (const password of ['', 'undefined', 'null', 'hunter2']) {
          const login = await client.post('/_edge/login', { password });
          assert.equal(login.status, 503, `password ${JSON.stringify(password)}`);
          assert.equal(client.cookie, undefined);
        }
        const basic = `Basic ${Buffer.from('admin:').toString('base64')}`;
        assert.equal((await client.get('/_edge/status', { authorization: basic })).status, 503);
        assert.equal((await client.get('/_edge/health')).status, 200, 'liveness still works');

        const warnings = logs.lines.filter((line) =>
          String(line.msg).startsWith('admin page disabled'),
        );
        assert.equal(warnings.length, 1);
        assert.ok(!JSON.stringify(logs.lines).includes('hunter2'), 'the hash value is not logged');
      } finally {
        await server.close();
      }
    });
  }
});
