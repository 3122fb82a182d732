import { spawnSync } from 'node:child_process';
import { cpus, totalmem, release } from 'node:os';

/** The machine and tool versions a result belongs to. */
export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  versions: Record<string, string>;
}

/** Returns the part of a command's output (stdout and stderr together) that `pattern` captures. */
function versionOf(command: string, args: string[], pattern: RegExp): string {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  if (result.error !== undefined) return 'not installed';

  // nginx -v and wrk -v print to stderr, and wrk -v exits with status 1.
  const match = pattern.exec(`${result.stdout}${result.stderr}`);
  return match?.[1] ?? 'unknown';
}

export function describeMachine(): MachineInfo {
  return {
    cpuModel: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    versions: {
      node: process.version,
      nginx: versionOf('nginx', ['-v'], /nginx version: nginx\/(\S+)/),
      caddy: versionOf('caddy', ['version'], /^v?(\S+)/),
      haproxy: versionOf('haproxy', ['-v'], /HAProxy version (\S+)/),
      wrk: versionOf('wrk', ['-v'], /^wrk (\S+)/),
      openssl: versionOf('openssl', ['version'], /^OpenSSL (\S+)/),
    },
  };
}

/** Returns the commit the edge was built from, marked when src/ has uncommitted changes. */
export function describeSource(): string {
  const commit = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' });
  if (commit.status !== 0) return 'unknown commit';

  const changes = spawnSync('git', ['status', '--porcelain', '--', 'src'], { encoding: 'utf8' });
  const dirty = changes.stdout.trim() !== '';
  return `commit ${commit.stdout.trim()}${dirty ? ' plus uncommitted changes in src/' : ''}`;
}
