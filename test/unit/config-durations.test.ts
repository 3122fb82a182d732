import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/load.ts';
import { MAX_DURATION_MS } from '../../src/config/schema.ts';
import { ConfigError } from '../../src/errors.ts';

const TOO_LONG_MS = 3_000_000_000;
const LIMIT_MESSAGE = 'must be at most 2147483647 ms (about 24 days)';

const acme = { directory: 'letsencrypt', email: 'ops@example.com', termsOfServiceAgreed: true };
const route = { path: '/', service: 'web' };
const service = { container: 'web-1', image: 'ghcr.io/acme/web', port: 8000, environment: 'prod' };
const environments = { prod: { secretEnv: 'EDGE_DEPLOY_SECRET_PROD' } };

/** Builds a valid configuration with `patch` merged into its parts. */
function configWith(patch: {
  top?: object;
  site?: object;
  route?: object;
  acme?: object;
  service?: object;
  deploy?: object;
}): object {
  return {
    ...patch.top,
    tls: { acme: { ...acme, ...patch.acme } },
    sites: [
      {
        name: 'prod',
        hosts: ['app.example.com'],
        ...patch.site,
        routes: [{ ...route, ...patch.route }],
      },
    ],
    services: { web: { ...service, ...patch.service } },
    deploy: { environments, ...patch.deploy },
  };
}

/** Every duration field: its path in the report and the configuration that sets it. */
const DURATIONS: [string, (ms: number) => object][] = [
  ['timeouts.headersMs', (ms) => configWith({ top: { timeouts: { headersMs: ms } } })],
  ['timeouts.requestMs', (ms) => configWith({ top: { timeouts: { requestMs: ms } } })],
  ['timeouts.keepAliveMs', (ms) => configWith({ top: { timeouts: { keepAliveMs: ms } } })],
  ['timeouts.shutdownGraceMs', (ms) => configWith({ top: { timeouts: { shutdownGraceMs: ms } } })],
  [
    'sites[0].routes[0].timeouts.connectMs',
    (ms) => configWith({ route: { timeouts: { connectMs: ms } } }),
  ],
  [
    'sites[0].routes[0].timeouts.upstreamMs',
    (ms) => configWith({ route: { timeouts: { upstreamMs: ms } } }),
  ],
  [
    'sites[0].routes[0].timeouts.websocketIdleMs',
    (ms) => configWith({ route: { timeouts: { websocketIdleMs: ms } } }),
  ],
  [
    'sites[0].routes[0].timeouts.upstreamKeepAliveMs',
    (ms) => configWith({ route: { timeouts: { upstreamKeepAliveMs: ms } } }),
  ],
  [
    'sites[0].healthCheck.intervalMs',
    (ms) => configWith({ site: { healthCheck: { intervalMs: ms } } }),
  ],
  [
    'sites[0].healthCheck.timeoutMs',
    (ms) => configWith({ site: { healthCheck: { timeoutMs: ms } } }),
  ],
  ['tls.acme.renewCheckIntervalMs', (ms) => configWith({ acme: { renewCheckIntervalMs: ms } })],
  ['tls.acme.retryScheduleMs[1]', (ms) => configWith({ acme: { retryScheduleMs: [1000, ms] } })],
  [
    'tls.acme.pollMinMs',
    (ms) => configWith({ acme: { pollMinMs: ms, pollMaxMs: MAX_DURATION_MS } }),
  ],
  ['tls.acme.pollMaxMs', (ms) => configWith({ acme: { pollMaxMs: ms } })],
  [
    'services.web.health.intervalMs',
    (ms) => configWith({ service: { health: { intervalMs: ms } } }),
  ],
  ['services.web.health.timeoutMs', (ms) => configWith({ service: { health: { timeoutMs: ms } } })],
  ['services.web.drainTimeoutMs', (ms) => configWith({ service: { drainTimeoutMs: ms } })],
  [
    'services.web.websocketCloseGraceMs',
    (ms) => configWith({ service: { websocketCloseGraceMs: ms } }),
  ],
  [
    'services.web.websocketCloseSpreadMs',
    (ms) => configWith({ service: { websocketCloseSpreadMs: ms } }),
  ],
  ['services.web.preDeployTimeoutMs', (ms) => configWith({ service: { preDeployTimeoutMs: ms } })],
  ['deploy.maxClockSkewMs', (ms) => configWith({ deploy: { maxClockSkewMs: ms } })],
  ['deploy.failedAttemptsWindowMs', (ms) => configWith({ deploy: { failedAttemptsWindowMs: ms } })],
  ['admin.sessionTtlMs', (ms) => configWith({ top: { admin: { sessionTtlMs: ms } } })],
];

/** Returns the problems parseConfig reports for `raw`, failing when it accepts it. */
function problemsOf(raw: unknown): string[] {
  try {
    parseConfig(raw);
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error.problems;
  }
  assert.fail('config was accepted');
}

describe('config durations', () => {
  it('limit is the largest delay Node timers accept', () => {
    assert.equal(MAX_DURATION_MS, 2 ** 31 - 1);
  });

  for (const [at, build] of DURATIONS) {
    it(`rejects ${at} above the timer limit`, () => {
      const problems = problemsOf(build(TOO_LONG_MS));
      assert.deepEqual(problems, [`${at}: ${LIMIT_MESSAGE}`]);
    });
  }

  it('names milliseconds for a unit string', () => {
    const problems = problemsOf(configWith({ top: { timeouts: { headersMs: '5s' } } }));
    assert.deepEqual(problems, [
      'timeouts.headersMs: must be a number of milliseconds, such as 5000, got string',
    ]);
  });

  it('names milliseconds in a schedule entry', () => {
    const problems = problemsOf(configWith({ acme: { retryScheduleMs: [1000, null] } }));
    assert.deepEqual(problems, [
      'tls.acme.retryScheduleMs[1]: must be a number of milliseconds, such as 5000, got an empty value',
    ]);
  });

  it('accepts every duration at the timer limit', () => {
    for (const [at, build] of DURATIONS) {
      assert.doesNotThrow(() => parseConfig(build(MAX_DURATION_MS)), at);
    }
  });
});
