import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/load.ts';
import { DEFAULT_ACME_POLL_MAX_MS } from '../../src/config/schema.ts';
import { ConfigError } from '../../src/errors.ts';

const sites = [
  { name: 'prod', hosts: ['app.example.com'], routes: [{ path: '/', upstream: 'http://web:80' }] },
];
const acme = { directory: 'letsencrypt', email: 'ops@example.com', termsOfServiceAgreed: true };

/** Returns the problems parseConfig reports for `polling`, failing when it accepts it. */
function problemsOf(polling: object): string[] {
  try {
    parseConfig({ sites, tls: { acme: { ...acme, ...polling } } });
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error.problems;
  }
  assert.fail('config was accepted');
}

describe('config acme polling', () => {
  it('rejects a first wait above the maximum', () => {
    assert.deepEqual(problemsOf({ pollMinMs: 5000, pollMaxMs: 2000 }), [
      'tls.acme.pollMinMs: must be at most tls.acme.pollMaxMs (2000), got 5000',
    ]);
  });

  it('compares with the default maximum', () => {
    const pollMinMs = DEFAULT_ACME_POLL_MAX_MS + 1;
    assert.deepEqual(problemsOf({ pollMinMs }), [
      `tls.acme.pollMinMs: must be at most tls.acme.pollMaxMs (${DEFAULT_ACME_POLL_MAX_MS}), got ${pollMinMs}`,
    ]);
  });

  it('reports only the invalid field when one is malformed', () => {
    assert.deepEqual(problemsOf({ pollMinMs: 5000, pollMaxMs: 0 }), [
      'tls.acme.pollMaxMs: must be greater than 0',
    ]);
  });

  it('accepts equal waits', () => {
    const config = parseConfig({
      sites,
      tls: { acme: { ...acme, pollMinMs: 2000, pollMaxMs: 2000 } },
    });
    assert.equal(config.tls.acme!.pollMinMs, 2000);
    assert.equal(config.tls.acme!.pollMaxMs, 2000);
  });
});
