import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/load.ts';
import { ConfigError } from '../../src/errors.ts';

const minimal = {
  sites: [
    {
      name: 'prod',
      hosts: ['App.Example.com.'],
      routes: [{ path: '/', upstream: 'http://web:80' }],
    },
  ],
};

describe('config', () => {
  it('normalises host names and fills defaults', () => {
    const config = parseConfig(minimal);
    assert.deepEqual(config.sites[0]!.hosts, ['app.example.com']);
    assert.equal(config.listen.httpsPort, 443);
    assert.equal(config.sites[0]!.routes[0]!.stripPrefix, false);
  });

  it('rejects upstream URLs with extra parts', () => {
    for (const upstream of [
      'http://user:pw@web:80',
      'http://web:80?token=abc',
      'http://web:80/?',
      'http://web:80#x',
      'http://web:80/api',
      'http://@web:80',
      'http://web:80/.',
      'http://web:80/%2e',
      'http://web:80\\',
      'http:web:80',
      'http:/web:80',
      ' http://web:80',
      'http://we\tb:80',
      'http://web:0',
    ]) {
      const config = { sites: [{ ...minimal.sites[0], routes: [{ path: '/', upstream }] }] };
      assert.throws(
        () => parseConfig(config),
        /routes\[0\]\.upstream: must be an http:\/\/ or https:\/\/ URL with no path, query, fragment or credentials/,
        upstream,
      );
    }
    for (const upstream of [
      'http://web:80/',
      'https://web',
      'http://[::1]:8000',
      'http://10.0.0.5',
    ]) {
      const plain = { sites: [{ ...minimal.sites[0], routes: [{ path: '/', upstream }] }] };
      assert.equal(parseConfig(plain).sites[0]!.routes[0]!.upstream, upstream);
    }
  });

  it('returns a frozen object', () => {
    const config = parseConfig(minimal);
    assert.ok(Object.isFrozen(config));
    assert.ok(Object.isFrozen(config.sites[0]!.routes[0]));
  });

  it('lists every problem with its path', () => {
    const bad = {
      sites: [
        minimal.sites[0],
        {
          name: 'staging',
          hosts: ['s.example.com'],
          routes: [{ path: 'api', upstream: 'http://x:1' }],
        },
      ],
      listen: { httpPort: 70000 },
    };
    assert.throws(
      () => parseConfig(bad),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.ok(error.problems.includes('sites[1].routes[0].path: must start with /'));
        assert.ok(error.problems.some((p) => p.startsWith('listen.httpPort:')));
        assert.equal(error.problems.length, 2);
        return true;
      },
    );
  });

  it('rejects a host used by two sites', () => {
    const bad = {
      sites: [
        minimal.sites[0],
        {
          name: 'other',
          hosts: ['app.example.com'],
          routes: [{ path: '/', upstream: 'http://y:1' }],
        },
      ],
    };
    assert.throws(() => parseConfig(bad), /host app\.example\.com is already used by sites\[0\]/);
  });

  it('rejects a route with two targets', () => {
    const bad = {
      sites: [
        {
          name: 'a',
          hosts: ['a.example.com'],
          routes: [{ path: '/', upstream: 'http://y:1', static: '.' }],
        },
      ],
    };
    assert.throws(() => parseConfig(bad), /exactly one of upstream, service or static/);
  });
});

describe('config acme', () => {
  it('requires an explicit ACME directory', () => {
    const bad = {
      ...minimal,
      tls: { acme: { email: 'ops@example.com', termsOfServiceAgreed: true } },
    };
    assert.throws(() => parseConfig(bad), /tls\.acme\.directory: is required/);
  });
});
