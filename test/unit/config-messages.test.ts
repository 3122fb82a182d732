import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/load.ts';
import { ConfigError } from '../../src/errors.ts';

const site = {
  name: 'prod',
  hosts: ['app.example.com'],
  routes: [{ path: '/', upstream: 'http://web:80' }],
};
const service = { container: 'web-1', image: 'ghcr.io/acme/web', port: 8000, environment: 'prod' };
const environments = { prod: { secretEnv: 'EDGE_DEPLOY_SECRET_PROD' } };

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

describe('config messages', () => {
  const cases: [string, unknown, string][] = [
    [
      'missing field',
      { sites: [{ hosts: ['a.example.com'], routes: site.routes }] },
      'sites[0].name: is required',
    ],
    [
      'number too big',
      { sites: [site], listen: { httpPort: 70000 } },
      'listen.httpPort: must be at most 65535',
    ],
    [
      'number too small',
      { sites: [site], listen: { redirectPort: 0 } },
      'listen.redirectPort: must be at least 1',
    ],
    [
      'positive number',
      { sites: [site], timeouts: { keepAliveMs: 0 } },
      'timeouts.keepAliveMs: must be greater than 0',
    ],
    [
      'fraction',
      { sites: [site], timeouts: { headersMs: 1.5 } },
      'timeouts.headersMs: must be a whole number, got 1.5',
    ],
    [
      'string for number',
      { sites: [site], listen: { httpsPort: '443' } },
      'listen.httpsPort: must be a number, got string',
    ],
    [
      'empty value',
      { sites: [{ ...site, hosts: null }] },
      'sites[0].hosts: must be a list, got an empty value',
    ],
    [
      'boolean',
      { sites: [{ ...site, hsts: 'yes' }] },
      'sites[0].hsts: must be true or false, got string',
    ],
    ['empty list', { sites: [] }, 'sites: must have at least 1 entry'],
    [
      'empty string',
      { sites: [site], tls: { certificates: [{ hosts: ['a.example.com'], cert: '', key: 'k' }] } },
      'tls.certificates[0].cert: must not be empty',
    ],
    [
      'short string',
      {
        sites: [site],
        services: { web: { ...service, container: 'w' } },
        deploy: { environments },
      },
      'services.web.container: must be at least 2 characters long',
    ],
    ['unknown key', { sites: [site], listen: { bogus: 1 } }, 'listen: unknown key bogus'],
    [
      'unknown keys',
      { sites: [site], colour: 1, size: 2 },
      '(top level): unknown keys colour, size',
    ],
    [
      'enum',
      { sites: [site], log: { level: 'loud' } },
      'log.level: must be one of trace, debug, info, warn, error, fatal, silent, got loud',
    ],
    [
      'e-mail',
      {
        sites: [site],
        tls: { acme: { directory: 'letsencrypt', email: 'ops', termsOfServiceAgreed: true } },
      },
      'tls.acme.email: must be an e-mail address',
    ],
    [
      'starts with',
      { sites: [{ ...site, healthCheck: { path: 'health' } }] },
      'sites[0].healthCheck.path: must start with /',
    ],
  ];

  for (const [label, raw, expected] of cases) {
    it(`reports ${label} plainly`, () => {
      const problems = problemsOf(raw);
      assert.ok(problems.includes(expected), `${expected} not in ${JSON.stringify(problems)}`);
    });
  }

  it('keeps messages set in the schema', () => {
    const acme = {
      directory: 'letsencrypt',
      email: 'ops@example.com',
      termsOfServiceAgreed: false,
    };
    const problems = problemsOf({ sites: [site], tls: { acme } });
    assert.deepEqual(problems, [
      "tls.acme.termsOfServiceAgreed: must be true to accept the CA's terms of service",
    ]);
  });

  it('says "1 problem" for one problem', () => {
    assert.throws(
      () => parseConfig({ sites: [site], listen: { httpPort: 70000 } }),
      /invalid config config: 1 problem\n/,
    );
  });

  it('says "2 problems" for two problems', () => {
    assert.throws(
      () => parseConfig({ sites: [site], listen: { httpPort: 70000, httpsPort: 70000 } }),
      /invalid config config: 2 problems\n/,
    );
  });
});

describe('config trusted proxies', () => {
  it('lists every invalid entry with its index', () => {
    const problems = problemsOf({
      sites: [site],
      trustedProxies: ['10.0.0.0/8', 'notanip', '10.0.0.0/33', '10.1', '2001:db8::/129'],
    });
    assert.deepEqual(problems, [
      'trustedProxies[1]: notanip is not an IP address or CIDR range',
      'trustedProxies[2]: 10.0.0.0/33 is not an IP address or CIDR range',
      'trustedProxies[3]: 10.1 is not an IP address or CIDR range',
      'trustedProxies[4]: 2001:db8::/129 is not an IP address or CIDR range',
    ]);
  });

  it('accepts addresses and ranges of both families', () => {
    const entries = ['10.0.0.0/8', '192.168.1.10', '::1', 'fd00::/8', '::ffff:10.0.0.1'];
    const config = parseConfig({ sites: [site], trustedProxies: entries });
    assert.deepEqual(config.trustedProxies, entries);
  });
});

describe('config service image', () => {
  for (const image of [
    'ghcr.io/acme/web:prod',
    'ghcr.io/acme/web@sha256:abc',
    'GHCR.io/Acme/Web',
    '',
  ]) {
    it(`rejects ${JSON.stringify(image)} as a repository`, () => {
      const problems = problemsOf({
        sites: [site],
        services: { web: { ...service, image } },
        deploy: { environments },
      });
      assert.deepEqual(problems, [
        'services.web.image: must be an image repository without tag or digest, such as ghcr.io/owner/app',
      ]);
    });
  }

  for (const image of ['ghcr.io/acme/web', '127.0.0.1:5000/team/web', 'nginx']) {
    it(`accepts ${image} as a repository`, () => {
      const config = parseConfig({
        sites: [site],
        services: { web: { ...service, image } },
        deploy: { environments },
      });
      assert.equal(config.services.web!.image, image);
    });
  }
});
