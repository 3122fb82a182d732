import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { ConfigError, EdgeError } from '../../src/errors.ts';
import { createLogger } from '../../src/log.ts';
import { reportStartFailure } from '../../src/main.ts';

describe('config report of the edge process', () => {
  let dir: string;

  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'edge-config-report-'));
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const args of [['serve', '--help'], ['help']]) {
    it(`prints the usage for ${args.join(' ')}`, () => {
      const result = spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], {
        encoding: 'utf8',
        timeout: 60_000,
      });

      assert.equal(result.status, 0, result.stderr);
      assert.match(result.stdout, /^usage: caliente-edge serve \[--config FILE\]/);
    });
  }

  it('lists every late problem once on stderr', () => {
    const file = path.join(dir, 'edge.yml');
    writeFileSync(
      file,
      [
        'listen: { address: 127.0.0.1, httpPort: 0, httpsPort: 0 }',
        'trustedProxies: [notanip, 10.0.0.0/33]',
        'tls:',
        '  certificates:',
        '    - { hosts: [app.example.test], cert: app.pem, key: app.key }',
        'sites:',
        '  - name: prod',
        '    hosts: [app.example.test]',
        '    routes:',
        '      - { path: /, static: nodir }',
      ].join('\n'),
    );

    const env = { ...process.env };
    delete env.EDGE_CONFIG;
    const result = spawnSync(
      process.execPath,
      ['--import', 'tsx', 'src/main.ts', '--config', file],
      { env, encoding: 'utf8', timeout: 60_000 },
    );

    assert.equal(result.status, 1, result.stderr);
    const lines = result.stderr.trimEnd().split('\n');
    assert.deepEqual(lines, [
      `caliente-edge: invalid config ${file}: 5 problems`,
      '  - trustedProxies[0]: notanip is not an IP address or CIDR range',
      '  - trustedProxies[1]: 10.0.0.0/33 is not an IP address or CIDR range',
      `  - sites[0].routes[0].static: folder not found: ${path.join(dir, 'nodir')}`,
      `  - tls.certificates[0].cert: file not found: ${path.join(dir, 'app.pem')}`,
      `  - tls.certificates[0].key: file not found: ${path.join(dir, 'app.key')}`,
    ]);
    assert.equal(result.stdout, '', 'no log line for a config problem');
  });
});

describe('config report of a failed start', () => {
  function capture() {
    const log = new PassThrough();
    const stderr = new PassThrough();
    let logText = '';
    let stderrText = '';
    log.on('data', (chunk: Buffer) => (logText += chunk.toString()));
    stderr.on('data', (chunk: Buffer) => (stderrText += chunk.toString()));
    const logger = createLogger({ destination: log });
    return { logger, stderr, log: () => logText, err: () => stderrText };
  }

  it('writes a config problem to stderr only', async () => {
    const out = capture();
    const error = new ConfigError('invalid config edge.yml: 1 problem\n  - x: y', ['x: y']);

    await reportStartFailure(error, out.logger, out.stderr);

    assert.equal(out.err(), 'caliente-edge: invalid config edge.yml: 1 problem\n  - x: y\n');
    assert.equal(out.log(), '');
  });

  it('writes another failure to the log and stderr', async () => {
    const out = capture();
    const error = new EdgeError('EDGE_LISTEN_FAILED', 'listen EADDRINUSE 127.0.0.1:443');

    await reportStartFailure(error, out.logger, out.stderr);

    assert.equal(out.err(), 'caliente-edge: start failed: listen EADDRINUSE 127.0.0.1:443\n');
    const line = JSON.parse(out.log()) as { level: number; msg: string; err: string };
    assert.equal(line.msg, 'start failed');
    assert.equal(line.level, 60);
    assert.equal(line.err, 'listen EADDRINUSE 127.0.0.1:443');
  });
});
