import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfigFile, parseConfig } from '../../src/config/load.ts';
import type { EdgeConfig } from '../../src/config/schema.ts';

const acme = { directory: 'letsencrypt', email: 'ops@example.com', termsOfServiceAgreed: true };

/** A configuration that sets every path-like option to a relative path. */
const RELATIVE = {
  certsDir: 'data/certs',
  stateDir: 'data/state',
  docker: { socket: 'run/docker.sock' },
  tls: {
    acme: { ...acme, caBundle: 'ca/bundle.pem' },
    certificates: [{ hosts: ['app.example.com'], cert: 'tls/app.pem', key: 'tls/app.key' }],
  },
  sites: [{ name: 'prod', hosts: ['app.example.com'], routes: [{ path: '/', static: 'www' }] }],
};

/** Returns every path-like option of `config`, named by its key. */
function pathsOf(config: EdgeConfig): Record<string, string | undefined> {
  return {
    certsDir: config.certsDir,
    stateDir: config.stateDir,
    'docker.socket': config.docker.socket,
    'tls.acme.caBundle': config.tls.acme?.caBundle,
    'tls.certificates[0].cert': config.tls.certificates[0]?.cert,
    'tls.certificates[0].key': config.tls.certificates[0]?.key,
    'sites[0].routes[0].static': config.sites[0]?.routes[0]?.static,
  };
}

/** Returns the paths of RELATIVE resolved against `dir`. */
function expectedPaths(dir: string): Record<string, string> {
  return {
    certsDir: path.join(dir, 'data/certs'),
    stateDir: path.join(dir, 'data/state'),
    'docker.socket': path.join(dir, 'run/docker.sock'),
    'tls.acme.caBundle': path.join(dir, 'ca/bundle.pem'),
    'tls.certificates[0].cert': path.join(dir, 'tls/app.pem'),
    'tls.certificates[0].key': path.join(dir, 'tls/app.key'),
    'sites[0].routes[0].static': path.join(dir, 'www'),
  };
}

describe('config relative paths', () => {
  let dir: string;

  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'edge-config-paths-'));
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  it('resolves every path against baseDir', () => {
    const config = parseConfig(RELATIVE, { baseDir: dir });
    assert.deepEqual(pathsOf(config), expectedPaths(dir));
  });

  it('resolves the docker socket against the config folder', () => {
    const configDir = path.join(dir, 'etc');
    mkdirSync(configDir);
    const file = path.join(configDir, 'edge.yml');
    writeFileSync(
      file,
      [
        'docker: { socket: run/docker.sock }',
        'sites:',
        '  - name: prod',
        '    hosts: [app.example.com]',
        '    routes: [{ path: /, upstream: "http://web:80" }]',
      ].join('\n'),
    );

    const config = loadConfigFile(file);

    assert.equal(config.docker.socket, path.join(configDir, 'run/docker.sock'));
  });

  it('keeps absolute paths and the default socket', () => {
    const config = parseConfig(
      { ...RELATIVE, docker: {}, stateDir: '/srv/edge/state' },
      { baseDir: dir },
    );
    assert.equal(config.docker.socket, '/var/run/docker.sock');
    assert.equal(config.stateDir, '/srv/edge/state');
  });
});
