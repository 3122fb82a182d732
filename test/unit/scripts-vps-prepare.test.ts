import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';

const SCRIPT = path.resolve('scripts/vps-prepare.sh');

/** Real tools the script may use: reading and writing below VPS_ROOT only. */
const SAFE_TOOLS = [
  'bash',
  'cat',
  'chmod',
  'cut',
  'env',
  'grep',
  'head',
  'mkdir',
  'paste',
  'sed',
  'stat',
  'tr',
];

/**
 * Stand-ins for every command that changes a machine. Each logs its arguments and keeps the
 * state it would change in files, so a second run sees the result of the first.
 */
const FAKES: Record<string, string> = {
  'dpkg-query': `[ -e "$FAKE_STATE/pkg-\${@: -1}" ] && echo 'install ok installed' || exit 1`,
  'apt-get': `[ "$1" = install ] && for p in "$@"; do case $p in -*|install) ;; *) : >"$FAKE_STATE/pkg-$p" ;; esac; done; true`,
  systemctl: `case $1 in is-enabled|is-active) [ -e "$FAKE_STATE/docker-on" ] ;; enable) : >"$FAKE_STATE/docker-on" ;; esac`,
  ufw: [
    'case "$1 $2" in',
    `  "show added") echo "Added user rules (see 'ufw status' for running firewall):"; cat "$FAKE_STATE/ufw-rules" 2>/dev/null || echo '(None)' ;;`,
    `  "status "*) [ -e "$FAKE_STATE/ufw-on" ] && echo 'Status: active' || echo 'Status: inactive' ;;`,
    '  "allow "*) echo "ufw allow $2" >>"$FAKE_STATE/ufw-rules" ;;',
    '  "default deny") echo \'DEFAULT_INPUT_POLICY="DROP"\' >>"$VPS_ROOT/etc/default/ufw" ;;',
    '  "default allow") echo \'DEFAULT_OUTPUT_POLICY="ACCEPT"\' >>"$VPS_ROOT/etc/default/ufw" ;;',
    '  "--force enable") : >"$FAKE_STATE/ufw-on" ;;',
    'esac',
  ].join('\n'),
  swapon: `case $1 in --show=*) cat "$FAKE_STATE/swaps" 2>/dev/null || true ;; *) echo "$1 2G" >>"$FAKE_STATE/swaps" ;; esac`,
  fallocate: ': >"${@: -1}"',
  mkswap: 'true',
  sysctl: 'true',
  getent: 'echo docker:x:998:',
};

/** Commands that change the machine; a dry run must call none of them. */
const CHANGING = [
  /^apt-get /,
  /^systemctl enable/,
  /^ufw (allow|default|--force)/,
  /^swapon \//,
  /^fallocate/,
  /^mkswap/,
  /^sysctl/,
];

let scratch: string;
let root: string;
let state: string;
let bin: string;

function makeFakes(): void {
  for (const tool of SAFE_TOOLS) {
    const real = spawnSync('bash', ['-c', `command -v ${tool}`], {
      encoding: 'utf8',
    }).stdout.trim();
    assert.ok(real, `${tool} is installed`);
    symlinkSync(real, path.join(bin, tool));
  }
  for (const [name, body] of Object.entries(FAKES)) {
    const file = path.join(bin, name);
    writeFileSync(file, `#!/bin/bash\necho "${name} $*" >>"$FAKE_STATE/log"\n${body}\n`);
    chmodSync(file, 0o755);
  }
}

function prepare(...args: string[]): {
  status: number | null;
  stdout: string;
  stderr: string;
  log: string[];
} {
  const result = spawnSync('/bin/bash', [SCRIPT, ...args], {
    encoding: 'utf8',
    // Only the fakes and the safe tools are on PATH: a command the test forgot to fake fails
    // with "command not found" instead of touching this machine.
    env: { PATH: bin, VPS_ROOT: root, FAKE_STATE: state },
  });
  const logFile = path.join(state, 'log');
  const log = existsSync(logFile) ? readFileSync(logFile, 'utf8').trim().split('\n') : [];
  writeFileSync(logFile, '');
  return { status: result.status, stdout: result.stdout, stderr: result.stderr, log };
}

function changingCalls(log: string[]): string[] {
  return log.filter((line) => CHANGING.some((pattern) => pattern.test(line)));
}

describe('vps-prepare.sh', () => {
  beforeEach(() => {
    scratch = mkdtempSync(path.join(tmpdir(), 'ce-vps-'));
    root = path.join(scratch, 'root');
    state = path.join(scratch, 'state');
    bin = path.join(scratch, 'bin');
    for (const dir of [
      root,
      state,
      bin,
      path.join(root, 'etc/default'),
      path.join(root, 'etc/sysctl.d'),
    ]) {
      mkdirSync(dir, { recursive: true });
    }
    writeFileSync(path.join(root, 'etc/os-release'), 'ID=ubuntu\nVERSION_ID="24.04"\n');
    writeFileSync(path.join(root, 'etc/fstab'), '# static file system information\n');
    makeFakes();
  });

  afterEach(() => {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it('dry run lists changes and makes none', () => {
    const run = prepare('--dry-run');
    assert.equal(run.status, 0, run.stderr);
    for (const expected of [
      'would: install docker.io docker-compose-v2 ufw cron',
      'would: enable and start the docker service',
      'would: firewall: allow 22/tcp',
      'would: firewall: allow 80/tcp',
      'would: firewall: allow 443/tcp',
      'would: firewall: enable',
      'would: create 2G swap file',
      'would: list /swapfile in /etc/fstab',
      'would: set vm.swappiness=10',
    ]) {
      assert.ok(run.stdout.includes(expected), `dry run prints "${expected}"`);
    }
    assert.match(run.stdout, /dry run: \d+ change\(s\) would be made/);
    assert.deepEqual(changingCalls(run.log), []);
    assert.equal(existsSync(path.join(root, 'swapfile')), false);
    assert.equal(readFileSync(path.join(root, 'etc/fstab'), 'utf8').includes('/swapfile'), false);
    assert.equal(existsSync(path.join(root, 'opt/caliente')), false);
  });

  it('prepares a bare host', () => {
    const run = prepare();
    assert.equal(run.status, 0, run.stderr);
    const calls = changingCalls(run.log);
    assert.ok(calls.includes('apt-get install -y -qq docker.io docker-compose-v2 ufw cron'));
    assert.ok(calls.includes('systemctl enable --now docker'));
    assert.ok(calls.includes(`fallocate -l 2G ${root}/swapfile`));
    assert.ok(calls.includes(`swapon ${root}/swapfile`));
    assert.match(
      readFileSync(path.join(root, 'etc/fstab'), 'utf8'),
      /^\/swapfile none swap sw 0 0$/m,
    );
    assert.equal(
      readFileSync(path.join(root, 'etc/sysctl.d/99-caliente-swap.conf'), 'utf8'),
      'vm.swappiness=10\n',
    );
    assert.ok(existsSync(path.join(root, 'opt/caliente/backups')));
    assert.match(run.stdout, /DOCKER_GID=998/);
  });

  it('opens only SSH, HTTP and HTTPS', () => {
    const run = prepare();
    assert.equal(run.status, 0, run.stderr);
    const allowed = run.log.filter((line) => line.startsWith('ufw allow'));
    assert.deepEqual(allowed, ['ufw allow 22/tcp', 'ufw allow 80/tcp', 'ufw allow 443/tcp']);
    assert.ok(run.log.includes('ufw default deny incoming'));
  });

  it('allows SSH before enabling the firewall', () => {
    const run = prepare();
    const allowSsh = run.log.indexOf('ufw allow 22/tcp');
    const enable = run.log.indexOf('ufw --force enable');
    assert.ok(allowSsh >= 0, 'SSH is allowed');
    assert.ok(enable > allowSsh, 'the firewall is enabled after SSH is allowed');
  });

  it('second run changes nothing', () => {
    assert.equal(prepare().status, 0);
    const again = prepare();
    assert.equal(again.status, 0, again.stderr);
    assert.deepEqual(changingCalls(again.log), []);
    assert.match(again.stdout, /done: 0 change\(s\) made/);
    const fstab = readFileSync(path.join(root, 'etc/fstab'), 'utf8');
    assert.equal(fstab.match(/\/swapfile/g)?.length, 1);
  });

  it('keeps a custom SSH port open', () => {
    const run = prepare('--ssh-port', '2222');
    assert.equal(run.status, 0, run.stderr);
    assert.ok(run.log.includes('ufw allow 2222/tcp'));
    assert.equal(run.log.includes('ufw allow 22/tcp'), false);
  });

  it('reports foreign firewall rules', () => {
    writeFileSync(path.join(state, 'ufw-rules'), 'ufw allow 8080/tcp\n');
    const run = prepare('--dry-run');
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stderr, /another rule, check it: ufw allow 8080\/tcp/);
  });

  it('leaves existing swap alone', () => {
    writeFileSync(path.join(state, 'swaps'), '/dev/vdb1 2G\n');
    const run = prepare();
    assert.equal(run.status, 0, run.stderr);
    assert.equal(
      run.log.some((line) => line.startsWith('fallocate')),
      false,
    );
    assert.equal(readFileSync(path.join(root, 'etc/fstab'), 'utf8').includes('/swapfile'), false);
  });

  it('rejects an unknown option', () => {
    const run = prepare('--yes-please');
    assert.equal(run.status, 2);
    assert.match(run.stderr, /unknown option --yes-please/);
  });
});
