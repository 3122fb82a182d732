import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';

function launch(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.EDGE_CONFIG;
  const result = spawnSync(process.execPath, ['bin/caliente-edge.js', ...args], {
    env,
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('bin/caliente-edge.js', () => {
  it('prints the commands for help', () => {
    const result = launch(['help']);
    assert.equal(result.status, 0);
    assert.match(result.stdout, /serve \[--config FILE\]/);
    assert.match(result.stdout, /deploy/);
    assert.match(result.stdout, /hash-password/);
  });

  it('rejects an unknown command with exit code 1', () => {
    const result = launch(['frobnicate']);
    assert.equal(result.status, 1);
    assert.match(result.stderr, /unknown command frobnicate/);
  });

  it('passes options to serve when no command is given', () => {
    const result = launch(['--config', '/nonexistent/edge.yml']);
    assert.equal(result.status, 1);
    assert.match(result.stderr, /reading config \/nonexistent\/edge\.yml/);
  });

  it('runs the deploy and hash-password commands', () => {
    const deploy = launch(['deploy', '--help']);
    const hash = launch(['hash-password', '--help']);
    assert.equal(deploy.status, 0);
    assert.match(deploy.stdout, /caliente-edge deploy/);
    assert.equal(hash.status, 0);
    assert.match(hash.stdout, /hash-password/);
  });
});
