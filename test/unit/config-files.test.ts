import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfigFile, parseConfig } from '../../src/config/load.ts';
import { ConfigError } from '../../src/errors.ts';
import { createSelfSignedCertificate, type PemKeyPair } from '../../src/tls/self-signed.ts';

describe('config files', () => {
  let dir: string;
  let pair: PemKeyPair;
  let otherPair: PemKeyPair;

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'edge-config-files-'));
    pair = await createSelfSignedCertificate(['app.example.com']);
    otherPair = await createSelfSignedCertificate(['app.example.com']);
    mkdirSync(path.join(dir, 'public'));
    writeFileSync(path.join(dir, 'app.pem'), pair.cert);
    writeFileSync(path.join(dir, 'app.key'), pair.key);
    writeFileSync(path.join(dir, 'other.key'), otherPair.key);
    writeFileSync(path.join(dir, 'garbage.pem'), 'not a certificate\n');
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  /** Writes `lines` as edge.yml in the test folder and loads it. */
  function load(lines: string[]) {
    const file = path.join(dir, 'edge.yml');
    writeFileSync(file, lines.join('\n'));
    return loadConfigFile(file);
  }

  /** Returns the problems loading `lines` reports, failing when the file is accepted. */
  function problemsOf(lines: string[]): string[] {
    try {
      load(lines);
    } catch (error) {
      assert.ok(error instanceof ConfigError, String(error));
      return error.problems;
    }
    assert.fail('config was accepted');
  }

  const siteWith = (...routes: string[]) => [
    'sites:',
    '  - name: prod',
    '    hosts: [app.example.com]',
    '    routes:',
    ...routes.map((route) => `      - ${route}`),
  ];

  it('lists every missing file and folder in one report', () => {
    const problems = problemsOf([
      'trustedProxies: [10.0.0.0/8]',
      'tls:',
      '  certificates:',
      '    - { hosts: [app.example.com], cert: missing.pem, key: missing.key }',
      ...siteWith('{ path: /api, upstream: "http://api:8000" }', '{ path: /, static: nodir }'),
    ]);

    assert.deepEqual(problems, [
      `sites[0].routes[1].static: folder not found: ${path.join(dir, 'nodir')}`,
      `tls.certificates[0].cert: file not found: ${path.join(dir, 'missing.pem')}`,
      `tls.certificates[0].key: file not found: ${path.join(dir, 'missing.key')}`,
    ]);
  });

  it('reports these problems together with reference problems', () => {
    const problems = problemsOf(
      siteWith('{ path: /, static: nodir }', '{ path: /x, service: ghost }'),
    );

    assert.deepEqual(problems, [
      'sites[0].routes[1].service: unknown service ghost',
      `sites[0].routes[0].static: folder not found: ${path.join(dir, 'nodir')}`,
    ]);
  });

  it('reports a path of the wrong kind', () => {
    const problems = problemsOf([
      'tls:',
      '  certificates:',
      '    - { hosts: [app.example.com], cert: public, key: app.key }',
      ...siteWith('{ path: /, static: app.pem }'),
    ]);

    assert.deepEqual(problems, [
      `sites[0].routes[0].static: is a file, not a folder: ${path.join(dir, 'app.pem')}`,
      `tls.certificates[0].cert: is a folder, not a file: ${path.join(dir, 'public')}`,
    ]);
  });

  it('reports a certificate file without a certificate', () => {
    const problems = problemsOf([
      'tls:',
      '  certificates:',
      '    - { hosts: [app.example.com], cert: garbage.pem, key: app.key }',
      ...siteWith('{ path: /, static: public }'),
    ]);

    assert.equal(problems.length, 1);
    assert.ok(
      problems[0]!.startsWith(
        `tls.certificates[0].cert: no PEM certificate in ${path.join(dir, 'garbage.pem')}: `,
      ),
      problems[0],
    );
  });

  it('reports a key that belongs to another certificate', () => {
    const problems = problemsOf([
      'tls:',
      '  certificates:',
      '    - { hosts: [app.example.com], cert: app.pem, key: other.key }',
      ...siteWith('{ path: /, static: public }'),
    ]);

    assert.deepEqual(problems, [
      `tls.certificates[0].key: the key in ${path.join(dir, 'other.key')} does not belong to the certificate in ${path.join(dir, 'app.pem')}`,
    ]);
  });

  it('reports a missing ACME CA bundle', () => {
    const problems = problemsOf([
      'tls:',
      '  acme:',
      '    directory: https://127.0.0.1:14000/dir',
      '    email: ops@example.com',
      '    termsOfServiceAgreed: true',
      '    caBundle: pebble.minica.pem',
      ...siteWith('{ path: /, static: public }'),
    ]);

    assert.deepEqual(problems, [
      `tls.acme.caBundle: file not found: ${path.join(dir, 'pebble.minica.pem')}`,
    ]);
  });

  it('accepts files and folders that exist', () => {
    const config = load([
      'tls:',
      '  certificates:',
      '    - { hosts: [app.example.com], cert: app.pem, key: app.key }',
      ...siteWith('{ path: /, static: public }'),
    ]);

    assert.equal(config.sites[0]!.routes[0]!.static, path.join(dir, 'public'));
    assert.equal(config.tls.certificates[0]!.key, path.join(dir, 'app.key'));
  });

  it('skips file checks for configurations built in memory', () => {
    const raw = {
      sites: [
        { name: 'prod', hosts: ['app.example.com'], routes: [{ path: '/', static: 'nodir' }] },
      ],
    };

    const config = parseConfig(raw, { baseDir: dir });

    assert.equal(config.sites[0]!.routes[0]!.static, path.join(dir, 'nodir'));
    assert.throws(
      () => parseConfig(raw, { baseDir: dir, checkFiles: true }),
      /sites\[0\]\.routes\[0\]\.static: folder not found/,
    );
  });
});
