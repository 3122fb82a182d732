import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/load.ts';
import { ConfigError } from '../../src/errors.ts';

const sites = [
  { name: 'prod', hosts: ['app.example.com'], routes: [{ path: '/', upstream: 'http://web:80' }] },
];

/** Returns the problems parseConfig reports for `listen`, failing when it accepts it. */
function problemsOf(listen: unknown): string[] {
  try {
    parseConfig({ listen, sites });
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error.problems;
  }
  assert.fail('config was accepted');
}

describe('config listen address', () => {
  for (const address of ['not-an-ip', 'localhost', '[::]', '10.1', '0.0.0.0:80']) {
    it(`rejects ${address}`, () => {
      assert.deepEqual(problemsOf({ address }), [
        `listen.address: must be an IP address such as 0.0.0.0 or :: (127.0.0.1 for loopback only), got ${address}`,
      ]);
    });
  }

  for (const address of ['0.0.0.0', '127.0.0.1', '::', '::1', 'fe80::1%eth0']) {
    it(`accepts ${address}`, () => {
      assert.equal(parseConfig({ listen: { address }, sites }).listen.address, address);
    });
  }

  it('defaults to every IPv4 address', () => {
    assert.equal(parseConfig({ sites }).listen.address, '0.0.0.0');
  });
});

describe('config listen ports', () => {
  it('rejects one port for both listeners', () => {
    assert.deepEqual(problemsOf({ httpPort: 8443, httpsPort: 8443 }), [
      'listen.httpsPort: must differ from listen.httpPort (both are 8443)',
    ]);
  });

  it('rejects an HTTP port equal to the default HTTPS port', () => {
    assert.deepEqual(problemsOf({ httpPort: 443 }), [
      'listen.httpsPort: must differ from listen.httpPort (both are 443)',
    ]);
  });

  it('reports the clash beside other listen problems', () => {
    assert.deepEqual(problemsOf({ address: 'localhost', httpPort: 80, httpsPort: 80 }), [
      'listen.address: must be an IP address such as 0.0.0.0 or :: (127.0.0.1 for loopback only), got localhost',
      'listen.httpsPort: must differ from listen.httpPort (both are 80)',
    ]);
  });

  it('accepts port 0 for both listeners', () => {
    const config = parseConfig({ listen: { httpPort: 0, httpsPort: 0 }, sites });
    assert.equal(config.listen.httpPort, 0);
    assert.equal(config.listen.httpsPort, 0);
  });
});
