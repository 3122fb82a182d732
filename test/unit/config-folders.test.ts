import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfigFile } from '../../src/config/load.ts';
import { ConfigError } from '../../src/errors.ts';

const SITE = [
  'sites:',
  '  - name: prod',
  '    hosts: [app.example.com]',
  '    routes: [{ path: /, upstream: "http://web:80" }]',
];

describe('config state and certificate folders', () => {
  let dir: string;

  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'edge-config-folders-'));
    writeFileSync(path.join(dir, 'plain-file'), 'x');
    mkdirSync(path.join(dir, 'existing'));
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  /** Writes `lines` plus a valid site as edge.yml in the test folder and loads it. */
  function load(lines: string[]) {
    const file = path.join(dir, 'edge.yml');
    writeFileSync(file, [...lines, ...SITE].join('\n'));
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

  it('rejects a stateDir that is a file', () => {
    assert.deepEqual(problemsOf(['stateDir: plain-file']), [
      `stateDir: is a file, not a folder: ${path.join(dir, 'plain-file')}`,
    ]);
  });

  it('rejects a certsDir that is a file', () => {
    assert.deepEqual(problemsOf(['certsDir: plain-file']), [
      `certsDir: is a file, not a folder: ${path.join(dir, 'plain-file')}`,
    ]);
  });

  it('rejects a folder below a file', () => {
    assert.deepEqual(problemsOf(['stateDir: plain-file/state']), [
      `stateDir: cannot be created, because a parent is a file: ${path.join(dir, 'plain-file', 'state')}`,
    ]);
  });

  it('checks the default stateDir too', () => {
    writeFileSync(path.join(dir, 'state'), 'x');
    try {
      assert.deepEqual(problemsOf([]), [
        `stateDir: is a file, not a folder: ${path.join(dir, 'state')}`,
      ]);
    } finally {
      rmSync(path.join(dir, 'state'));
    }
  });

  it('accepts missing and existing folders', () => {
    const config = load(['stateDir: not-yet/state', 'certsDir: existing']);
    assert.equal(config.stateDir, path.join(dir, 'not-yet', 'state'));
    assert.equal(config.certsDir, path.join(dir, 'existing'));
  });
});
