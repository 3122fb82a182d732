import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';

const SCRIPTS = path.resolve('scripts');
const DAY_S = 24 * 60 * 60;

let scratch: string;

function run(script: string, args: string[], env: Record<string, string> = {}) {
  return spawnSync('/bin/bash', [path.join(SCRIPTS, script), ...args], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
  });
}

/** Writes an executable stand-in that logs its arguments to `log` and then runs `body`. */
function fakeCommand(name: string, body: string): string {
  const file = path.join(scratch, name);
  writeFileSync(file, `#!/bin/bash\necho "$*" >>"${scratch}/${name}.log"\n${body}\n`);
  chmodSync(file, 0o755);
  return file;
}

function ageFile(file: string, days: number): void {
  const when = Date.now() / 1000 - days * DAY_S;
  utimesSync(file, when, when);
}

beforeEach(() => {
  scratch = mkdtempSync(path.join(tmpdir(), 'ce-maint-'));
});

afterEach(() => {
  rmSync(scratch, { recursive: true, force: true });
});

describe('backup.sh', () => {
  function backup(extra: string[] = [], body = 'echo "archive of ${@: -1}"') {
    const pgDump = fakeCommand('pg_dump', body);
    const dir = path.join(scratch, 'backups');
    return { dir, result: run('backup.sh', ['--dir', dir, '--pg-dump', pgDump, ...extra]) };
  }

  it('dumps both databases by default', () => {
    const { dir, result } = backup();
    assert.equal(result.status, 0, result.stderr);
    for (const database of ['caliente_staging_db', 'caliente_prod_db']) {
      const files = readdirSync(path.join(dir, database));
      assert.equal(files.length, 1);
      assert.match(files[0]!, new RegExp(`^${database}-\\d{8}-\\d{6}\\.dump$`));
      const text = readFileSync(path.join(dir, database, files[0]!), 'utf8');
      assert.equal(text, `archive of --dbname=${database}\n`);
    }
  });

  it('asks pg_dump for a custom archive with create', () => {
    const { result } = backup();
    assert.equal(result.status, 0, result.stderr);
    const calls = readFileSync(path.join(scratch, 'pg_dump.log'), 'utf8');
    assert.match(calls, /^--format=custom --create --dbname=caliente_staging_db$/m);
  });

  it('writes dumps readable by the owner only', () => {
    const { dir, result } = backup();
    assert.equal(result.status, 0, result.stderr);
    const folder = path.join(dir, 'caliente_prod_db');
    const mode = statSync(path.join(folder, readdirSync(folder)[0]!)).mode & 0o777;
    assert.equal(mode, 0o600);
  });

  it('removes dumps past the retention', () => {
    const folder = path.join(scratch, 'backups', 'caliente_prod_db');
    mkdirSync(folder, { recursive: true });
    const old = path.join(folder, 'caliente_prod_db-20200101-031500.dump');
    const recent = path.join(folder, 'caliente_prod_db-20200110-031500.dump');
    const unrelated = path.join(folder, 'notes.txt');
    for (const file of [old, recent, unrelated]) writeFileSync(file, 'x');
    ageFile(old, 8);
    ageFile(recent, 6);
    ageFile(unrelated, 30);

    const { result } = backup(['--keep-days', '7', '--databases', 'caliente_prod_db']);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(existsSync(old), false, 'the 8-day-old dump is removed');
    assert.equal(existsSync(recent), true, 'the 6-day-old dump is kept');
    assert.equal(existsSync(unrelated), true, 'other files are left alone');
    assert.equal(readdirSync(folder).filter((f) => f.endsWith('.dump')).length, 2);
  });

  it('keeps old dumps when a dump fails', () => {
    const folder = path.join(scratch, 'backups', 'caliente_staging_db');
    mkdirSync(folder, { recursive: true });
    const old = path.join(folder, 'caliente_staging_db-20200101-031500.dump');
    writeFileSync(old, 'x');
    ageFile(old, 30);

    const failProd =
      '[[ "${@: -1}" == *prod* ]] && { echo "connection refused" >&2; exit 1; }; echo ok';
    const { dir, result } = backup([], failProd);
    assert.equal(result.status, 1);
    assert.match(result.stderr, /pg_dump of caliente_prod_db failed/);
    assert.equal(existsSync(old), true, 'rotation did not run');
    assert.deepEqual(
      readdirSync(path.join(dir, 'caliente_prod_db')),
      [],
      'no partial file is left',
    );
  });

  it('fails on an empty dump', () => {
    const { dir, result } = backup(['--databases', 'caliente_prod_db'], 'true');
    assert.equal(result.status, 1);
    assert.match(result.stderr, /wrote nothing/);
    assert.deepEqual(readdirSync(path.join(dir, 'caliente_prod_db')), []);
  });

  it('rejects a zero retention', () => {
    const { result } = backup(['--keep-days', '0']);
    assert.equal(result.status, 2);
    assert.match(result.stderr, /--keep-days must be a whole number of days, at least 1/);
  });

  it('runs pg_dump through docker exec by default', () => {
    const docker = fakeCommand('docker', 'echo archive');
    const result = spawnSync(
      '/bin/bash',
      [path.join(SCRIPTS, 'backup.sh'), '--dir', path.join(scratch, 'b')],
      {
        encoding: 'utf8',
        env: { PATH: `${scratch}:${process.env.PATH}` },
      },
    );
    assert.equal(result.status, 0, result.stderr);
    assert.ok(docker);
    const calls = readFileSync(path.join(scratch, 'docker.log'), 'utf8');
    assert.match(
      calls,
      /^exec caliente-postgres pg_dump --username=postgres --format=custom --create --dbname=caliente_prod_db$/m,
    );
  });
});

describe('docker-prune.sh', () => {
  it('prunes week-old data and never volumes', () => {
    const docker = fakeCommand('docker', 'true');
    const result = run('docker-prune.sh', ['--docker', docker]);
    assert.equal(result.status, 0, result.stderr);
    const calls = readFileSync(path.join(scratch, 'docker.log'), 'utf8').trim().split('\n');
    const prune = calls.filter((line) => line.startsWith('system prune'));
    assert.deepEqual(prune, ['system prune --force --filter until=168h']);
    assert.equal(
      calls.some((line) => line.includes('--volumes')),
      false,
    );
    assert.equal(
      calls.some((line) => /(^| )(-a|--all)( |$)/.test(line)),
      false,
    );
  });

  it('rejects an invalid duration', () => {
    const result = run('docker-prune.sh', ['--older-than', '7 days']);
    assert.equal(result.status, 2);
    assert.match(result.stderr, /must be a duration such as 168h/);
  });
});

describe('install-cron.sh', () => {
  function install(...args: string[]) {
    const cronFile = path.join(scratch, 'cron.d', 'caliente');
    mkdirSync(path.dirname(cronFile), { recursive: true });
    return { cronFile, result: run('install-cron.sh', ['--cron-file', cronFile, ...args]) };
  }

  it('writes the backup and prune jobs', () => {
    const { cronFile, result } = install('--keep-days', '10');
    assert.equal(result.status, 0, result.stderr);
    const lines = readFileSync(cronFile, 'utf8').split('\n');
    assert.ok(
      lines.includes(
        `15 3 * * * root ${SCRIPTS}/backup.sh --keep-days 10 >>/var/log/caliente-backup.log 2>&1`,
      ),
    );
    assert.ok(
      lines.includes(
        `30 4 * * 0 root ${SCRIPTS}/docker-prune.sh >>/var/log/caliente-prune.log 2>&1`,
      ),
    );
    assert.ok(lines.includes('SHELL=/bin/bash'));
  });

  it('writes a file cron accepts', () => {
    const { cronFile, result } = install();
    assert.equal(result.status, 0, result.stderr);
    assert.equal(statSync(cronFile).mode & 0o777, 0o644);
    assert.ok(readFileSync(cronFile, 'utf8').endsWith('\n'), 'cron needs a final newline');
    assert.deepEqual(
      readdirSync(path.dirname(cronFile)),
      ['caliente'],
      'no temporary file is left',
    );
  });

  it('second run leaves the file as is', () => {
    const first = install();
    assert.equal(first.result.status, 0, first.result.stderr);
    const before = readFileSync(first.cronFile, 'utf8');
    const second = install();
    assert.equal(second.result.status, 0, second.result.stderr);
    assert.match(second.result.stdout, /up to date/);
    assert.equal(readFileSync(second.cronFile, 'utf8'), before);
  });

  it('rejects a bad retention', () => {
    const { cronFile, result } = install('--keep-days', 'x');
    assert.equal(result.status, 2);
    assert.equal(existsSync(cronFile), false);
  });
});
