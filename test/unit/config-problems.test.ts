import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfigFile, parseConfig } from '../../src/config/load.ts';
import { ConfigError } from '../../src/errors.ts';

const route = { path: '/', upstream: 'http://web:80' };
const service = { container: 'web-1', image: 'ghcr.io/acme/web', port: 8000, environment: 'prod' };

/** Returns the problems `load` reports, failing when it accepts the configuration. */
function problemsOf(load: () => unknown): string[] {
  try {
    load();
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error.problems;
  }
  assert.fail('config was accepted');
}

describe('config problems reported together', () => {
  let dir: string;

  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'edge-config-problems-'));
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  it('lists schema, cross-field and file problems', () => {
    const file = path.join(dir, 'edge.yml');
    writeFileSync(
      file,
      [
        'listen: { httpPort: "80" }',
        'sites:',
        '  - name: prod',
        '    hosts: [app.example.com]',
        '    routes:',
        '      - { path: /, static: nodir }',
        '      - { path: /api, service: ghost }',
        '  - name: staging',
        '    hosts: [app.example.com]',
        '    routes: [{ path: /, upstream: "http://web:80" }]',
      ].join('\n'),
    );

    const problems = problemsOf(() => loadConfigFile(file));

    assert.deepEqual(problems, [
      'listen.httpPort: must be a number, got string',
      'sites[0].routes[1].service: unknown service ghost',
      'sites[1].hosts[0]: host app.example.com is already used by sites[0]',
      `sites[0].routes[0].static: folder not found: ${path.join(dir, 'nodir')}`,
    ]);
  });

  it('checks hosts of sites whose other fields fail', () => {
    const problems = problemsOf(() =>
      parseConfig({
        sites: [
          { name: 'prod', hosts: ['app.example.com'], routes: [] },
          { name: 'staging', hosts: ['bad host', 'App.Example.com'], routes: [route] },
        ],
      }),
    );

    assert.deepEqual(problems, [
      'sites[0].routes: must have at least 1 entry',
      'sites[1].hosts[0]: must be a DNS host name such as app.example.com',
      'sites[1].hosts[1]: host app.example.com is already used by sites[0]',
    ]);
  });

  it('reports duplicate names and paths beside schema problems', () => {
    const problems = problemsOf(() =>
      parseConfig({
        listen: { httpsPort: -1 },
        sites: [
          { name: 'prod', hosts: ['a.example.com'], routes: [route, { ...route, path: '/' }] },
          { name: 'prod', hosts: ['b.example.com'], routes: [route] },
        ],
      }),
    );

    assert.deepEqual(problems, [
      'listen.httpsPort: must be at least 0',
      'sites[0].routes[1].path: duplicate path /',
      'sites[1].name: duplicate site name prod (also sites[0])',
    ]);
  });

  it('reports an unknown environment beside an invalid service field', () => {
    const problems = problemsOf(() =>
      parseConfig({
        sites: [
          { name: 'prod', hosts: ['a.example.com'], routes: [{ path: '/', service: 'web' }] },
        ],
        services: { web: { ...service, port: 'eighty' } },
      }),
    );

    assert.deepEqual(problems, [
      'services.web.port: must be a number, got string',
      'services.web.environment: unknown environment prod (define it under deploy.environments)',
    ]);
  });

  it('reports no unknown service when services is malformed', () => {
    const problems = problemsOf(() =>
      parseConfig({
        sites: [
          { name: 'prod', hosts: ['a.example.com'], routes: [{ path: '/', service: 'web' }] },
        ],
        services: [service],
      }),
    );

    assert.deepEqual(problems, ['services: must be an object, got a list']);
  });

  it('accepts a reference to an invalid service', () => {
    const problems = problemsOf(() =>
      parseConfig({
        sites: [
          { name: 'prod', hosts: ['a.example.com'], routes: [{ path: '/', service: 'web' }] },
        ],
        services: { web: { ...service, port: 0 } },
        deploy: { environments: { prod: { secretEnv: 'EDGE_DEPLOY_SECRET_PROD' } } },
      }),
    );

    assert.deepEqual(problems, ['services.web.port: must be at least 1']);
  });

  it('rejects a service reference named like an object property', () => {
    const problems = problemsOf(() =>
      parseConfig({
        sites: [
          {
            name: 'prod',
            hosts: ['a.example.com'],
            routes: [{ path: '/', service: 'constructor' }],
          },
        ],
      }),
    );

    assert.deepEqual(problems, ['sites[0].routes[0].service: unknown service constructor']);
  });
});
