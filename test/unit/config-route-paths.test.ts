import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/load.ts';
import { ConfigError } from '../../src/errors.ts';

const RESERVED =
  "must not be /_edge or below it, because that prefix is reserved for the edge's own API";
const UNNORMALISED = 'must be normalised, without empty, . or .. segments, such as /api/v1';
const ENCODED = 'must not contain % or \\, because requests are matched on their decoded path';

/** Builds a configuration with one site whose routes have the given paths. */
function configWith(...paths: string[]): object {
  const routes = paths.map((path) => ({ path, upstream: 'http://web:80' }));
  return { sites: [{ name: 'prod', hosts: ['app.example.com'], routes }] };
}

/** Returns the problems parseConfig reports for a route at `path`, failing when it is accepted. */
function problemsOf(path: string): string[] {
  try {
    parseConfig(configWith('/', path));
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error.problems;
  }
  assert.fail(`route path ${path} was accepted`);
}

describe('config route paths', () => {
  const rejected: [string, string][] = [
    ['/_edge', RESERVED],
    ['/_edge/', RESERVED],
    ['/_edge/x', RESERVED],
    ['/_EDGE/status', RESERVED],
    ['/api/../x', UNNORMALISED],
    ['/./x', UNNORMALISED],
    ['/api/..', UNNORMALISED],
    ['/api//v1', UNNORMALISED],
    ['//api', UNNORMALISED],
    ['/api%2Fv1', ENCODED],
    ['/api\\v1', ENCODED],
    ['api', 'must start with /'],
    ['/api?x=1', 'must not contain ?, # or spaces'],
  ];

  for (const [path, message] of rejected) {
    it(`rejects ${path}`, () => {
      assert.deepEqual(problemsOf(path), [`sites[0].routes[1].path: ${message}`]);
    });
  }

  it('accepts normalised paths beside the reserved prefix', () => {
    const paths = ['/', '/api/', '/api/v1.2/', '/_edgex', '/x/_edge', '/.well-known/x'];
    const config = parseConfig(configWith(...paths));
    assert.deepEqual(
      config.sites[0]!.routes.map((route) => route.path),
      paths,
    );
  });
});
