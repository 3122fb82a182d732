import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfigFile } from '../../src/config/load.ts';
import { ConfigError } from '../../src/errors.ts';

describe('config yaml errors', () => {
  let dir: string;

  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'edge-config-yaml-'));
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  /** Writes `lines` as edge.yml and returns the message of the error loading it raises. */
  function errorOf(lines: string[]): { file: string; message: string } {
    const file = path.join(dir, 'edge.yml');
    writeFileSync(file, lines.join('\n'));
    try {
      loadConfigFile(file);
    } catch (error) {
      assert.ok(error instanceof ConfigError, String(error));
      return { file, message: error.message };
    }
    assert.fail('config was accepted');
  }

  it('counts the documents of a multi-document file', () => {
    const { file, message } = errorOf(['log: { level: info }', '---', 'sites: []', '---', 'a: 1']);
    assert.equal(
      message,
      `parsing config ${file}: the file contains 3 YAML documents separated by ---, but the configuration must be one document`,
    );
  });

  it('accepts a single document that starts with ---', () => {
    const { message } = errorOf(['---', 'sites: []']);
    assert.match(message, /sites: must have at least 1 entry/);
  });

  it('gives the line of a syntax error once', () => {
    const { file, message } = errorOf(['log: { level: info }', 'sites: [1, 2', 'admin: {}']);
    assert.ok(message.startsWith(`parsing config ${file}: `), message);
    assert.equal(message.match(/line 3/g)?.length, 1, message);
    assert.doesNotMatch(message, /\n$/);
  });
});
