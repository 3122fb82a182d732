import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/load.ts';
import { ConfigError } from '../../src/errors.ts';

const site = { name: 'prod', hosts: ['app.example.com'], routes: [{ path: '/', static: 'www' }] };

describe('site http option', () => {
  it('defaults to redirect', () => {
    const config = parseConfig({ sites: [site] });
    assert.equal(config.sites[0]!.http, 'redirect');
  });

  it('accepts serve', () => {
    const config = parseConfig({ sites: [{ ...site, http: 'serve' }] });
    assert.equal(config.sites[0]!.http, 'serve');
  });

  it('rejects other values and lists the allowed ones', () => {
    assert.throws(
      () => parseConfig({ sites: [{ ...site, http: 'proxy' }] }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.deepEqual(error.problems, [
          'sites[0].http: must be one of redirect, serve, got proxy',
        ]);
        return true;
      },
    );
  });
});
