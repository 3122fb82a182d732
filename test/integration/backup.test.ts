import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess, type SpawnSyncOptions } from 'node:child_process';
import { once } from 'node:events';
import {
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

const INIT_SCRIPT = path.resolve('compose/postgres/init-databases.sh');
const BACKUP = path.resolve('scripts/backup.sh');
const RESTORE = path.resolve('scripts/restore.sh');
const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;

/** Newest PostgreSQL server binaries installed by Debian's postgresql package. */
function postgresBin(): string {
  const base = '/usr/lib/postgresql';
  assert.ok(existsSync(base), 'PostgreSQL is installed (apt-get install postgresql)');
  const versions = readdirSync(base)
    .filter((v) => existsSync(path.join(base, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  assert.ok(versions[0], 'an initdb exists under /usr/lib/postgresql/*/bin');
  return path.join(base, versions[0], 'bin');
}

/** initdb and postgres refuse to run as root: as root, the cluster runs as the postgres user. */
function clusterUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const entry = spawnSync('getent', ['passwd', 'postgres'], { encoding: 'utf8' }).stdout.trim();
  const [, , uid, gid] = entry.split(':');
  assert.ok(uid && gid, 'the postgres system user exists');
  return { uid: Number(uid), gid: Number(gid) };
}

describe('database backup and restore on a real PostgreSQL', () => {
  const bin = postgresBin();
  const user = clusterUser();
  const port = String(20_000 + Math.floor(Math.random() * 20_000));
  let dir: string;
  let server: ChildProcess | undefined;
  let serverLog = '';
  let backups: string;
  let envDir: string;

  const connect = () => ['-h', dir, '-p', port];
  const env = () => ({
    ...process.env,
    PATH: `${bin}:${process.env.PATH}`,
    PGHOST: dir,
    PGPORT: port,
  });

  function sh(command: string, args: string[], options: SpawnSyncOptions = {}) {
    return spawnSync(command, args, { encoding: 'utf8', env: env(), ...options });
  }

  function psql(role: string, database: string, sql: string) {
    return sh(path.join(bin, 'psql'), [
      ...connect(),
      '-U',
      role,
      '-d',
      database,
      '-tAX',
      '-v',
      'ON_ERROR_STOP=1',
      '-c',
      sql,
    ]);
  }

  function query(database: string, sql: string): string {
    const result = psql('postgres', database, sql);
    assert.equal(result.status, 0, result.stderr as string);
    return (result.stdout as string).trim();
  }

  /** Copies the example env files with real passwords, as a user does on the VPS. */
  function writeEnvFiles(overrides: Record<string, string> = {}): string {
    const folder = mkdtempSync(path.join(dir, 'env-'));
    for (const [environment, password] of [
      ['staging', 'stagingpw1'],
      ['prod', 'prodpw2'],
    ] as const) {
      let text = readFileSync(path.resolve(`compose/.env.${environment}.example`), 'utf8');
      text = text.replace(/^DB_PASSWORD=.*$/m, `DB_PASSWORD=${password}`);
      for (const [key, value] of Object.entries(overrides))
        text = text.replace(new RegExp(`^${key}=.*$`, 'm'), `${key}=${value}`);
      writeFileSync(path.join(folder, `env.${environment}`), text);
    }
    return folder;
  }

  function initDatabases(folder: string) {
    return sh('/bin/bash', [INIT_SCRIPT], {
      env: {
        ...env(),
        POSTGRES_USER: 'postgres',
        POSTGRES_DB: 'postgres',
        CALIENTE_ENV_FILES: `${folder}/env.staging ${folder}/env.prod`,
      },
    });
  }

  function backup(...args: string[]) {
    const pgDump = `${bin}/pg_dump ${connect().join(' ')} -U postgres`;
    return sh('/bin/bash', [BACKUP, '--dir', backups, '--pg-dump', pgDump, ...args]);
  }

  function restore(...args: string[]) {
    return sh('/bin/bash', [
      RESTORE,
      '--dir',
      backups,
      '--pg-dump',
      `${bin}/pg_dump ${connect().join(' ')} -U postgres`,
      '--pg-restore',
      `${bin}/pg_restore ${connect().join(' ')} -U postgres`,
      '--psql',
      `${bin}/psql ${connect().join(' ')} -U postgres`,
      ...args,
    ]);
  }

  function newestDump(database: string): string {
    const folder = path.join(backups, database);
    const files = readdirSync(folder)
      .filter((f) => f.startsWith(`${database}-2`))
      .sort();
    assert.ok(files.length > 0, `a dump of ${database} exists`);
    return path.join(folder, files[files.length - 1]!);
  }

  before(async () => {
    // Short path: the server's unix socket lives here and socket paths are limited to 107 bytes.
    dir = mkdtempSync(path.join(tmpdir(), 'ce-pg-'));
    backups = path.join(dir, 'backups');
    if (user) chownSync(dir, user.uid, user.gid);

    const init = sh(
      path.join(bin, 'initdb'),
      ['-D', `${dir}/data`, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync'],
      {
        ...user,
        cwd: dir,
      },
    );
    assert.equal(init.status, 0, `initdb failed: ${init.stderr}`);

    server = spawn(
      path.join(bin, 'postgres'),
      ['-D', `${dir}/data`, '-k', dir, '-p', port, '-c', 'listen_addresses=', '-c', 'fsync=off'],
      { ...user, cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    server.stderr?.on('data', (chunk) => (serverLog += chunk));

    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (sh(path.join(bin, 'pg_isready'), connect()).status !== 0) {
      assert.ok(Date.now() < deadline, `PostgreSQL did not start: ${serverLog}`);
      assert.equal(server.exitCode, null, `PostgreSQL exited: ${serverLog}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }

    envDir = writeEnvFiles();
    const created = initDatabases(envDir);
    assert.equal(created.status, 0, `init-databases.sh failed: ${created.stderr}`);
    mkdirSync(backups);
  });

  after(async () => {
    if (server && server.exitCode === null) {
      // SIGINT is PostgreSQL's fast shutdown: it disconnects clients and stops cleanly.
      server.kill('SIGINT');
      const stopped = once(server, 'exit');
      const timer = setTimeout(() => server?.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await stopped;
      clearTimeout(timer);
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('init gives each database its own owner', () => {
    const owners = query(
      'postgres',
      "SELECT datname || '=' || pg_get_userbyid(datdba) FROM pg_database WHERE datname LIKE 'caliente%' ORDER BY 1",
    );
    assert.equal(owners, 'caliente_prod_db=caliente_prod\ncaliente_staging_db=caliente_staging');
  });

  it('staging role cannot open production', () => {
    const denied = psql('caliente_staging', 'caliente_prod_db', 'SELECT 1');
    assert.notEqual(denied.status, 0);
    assert.match(denied.stderr as string, /permission denied for database "?caliente_prod_db"?/);

    const reverse = psql('caliente_prod', 'caliente_staging_db', 'SELECT 1');
    assert.notEqual(reverse.status, 0);
    assert.match(
      reverse.stderr as string,
      /permission denied for database "?caliente_staging_db"?/,
    );
  });

  it('each role opens its own database', () => {
    const staging = psql(
      'caliente_staging',
      'caliente_staging_db',
      'CREATE TABLE probe (id int); SELECT 1',
    );
    assert.equal(staging.status, 0, staging.stderr as string);
    const prod = psql('caliente_prod', 'caliente_prod_db', 'SELECT current_database()');
    assert.equal(prod.status, 0, prod.stderr as string);
    assert.equal((prod.stdout as string).trim(), 'caliente_prod_db');
  });

  it('roles cannot open the maintenance database', () => {
    const denied = psql('caliente_prod', 'postgres', 'SELECT 1');
    assert.notEqual(denied.status, 0);
    assert.match(denied.stderr as string, /permission denied for database "?postgres"?/);
  });

  it('init runs again without harm', () => {
    const again = initDatabases(envDir);
    assert.equal(again.status, 0, again.stderr as string);
    const denied = psql('caliente_staging', 'caliente_prod_db', 'SELECT 1');
    assert.notEqual(denied.status, 0);
  });

  it('init rejects one role for both', () => {
    const shared = writeEnvFiles({ DB_USER: 'caliente' });
    const result = initDatabases(shared);
    assert.notEqual(result.status, 0);
    assert.match(result.stderr as string, /DB_USER caliente is used by another environment/);
  });

  it('init rejects the placeholder password', () => {
    const folder = mkdtempSync(path.join(dir, 'env-'));
    for (const environment of ['staging', 'prod']) {
      writeFileSync(
        path.join(folder, `env.${environment}`),
        readFileSync(`compose/.env.${environment}.example`),
      );
    }
    const result = initDatabases(folder);
    assert.notEqual(result.status, 0);
    assert.match(result.stderr as string, /DB_PASSWORD is still the example placeholder/);
  });

  it('dump and restore bring data back', () => {
    const setup = psql(
      'caliente_prod',
      'caliente_prod_db',
      "CREATE TABLE orders (id int PRIMARY KEY, item text); INSERT INTO orders VALUES (1, 'tamales'), (2, 'pozole')",
    );
    assert.equal(setup.status, 0, setup.stderr as string);

    const dumped = backup();
    assert.equal(dumped.status, 0, dumped.stderr as string);
    const dump = newestDump('caliente_prod_db');
    assert.ok(existsSync(newestDump('caliente_staging_db')));

    // Damage after the backup: a lost row, a changed row and a table the dump never saw.
    const damage = psql(
      'caliente_prod',
      'caliente_prod_db',
      "DELETE FROM orders WHERE id = 1; UPDATE orders SET item = 'x' WHERE id = 2; CREATE TABLE later (id int)",
    );
    assert.equal(damage.status, 0, damage.stderr as string);

    const restored = restore('--yes', 'caliente_prod_db', dump);
    assert.equal(restored.status, 0, `${restored.stdout}\n${restored.stderr}`);

    assert.equal(
      query('caliente_prod_db', 'SELECT id || item FROM orders ORDER BY id'),
      '1tamales\n2pozole',
    );
    assert.equal(
      query('caliente_prod_db', "SELECT count(*) FROM pg_tables WHERE tablename = 'later'"),
      '0',
    );
  });

  it('restore keeps owner and access rules', () => {
    const owner = query(
      'postgres',
      "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'caliente_prod_db'",
    );
    assert.equal(owner, 'caliente_prod');
    const denied = psql('caliente_staging', 'caliente_prod_db', 'SELECT 1');
    assert.notEqual(denied.status, 0);
    assert.match(denied.stderr as string, /permission denied for database/);
    const allowed = psql('caliente_prod', 'caliente_prod_db', 'SELECT count(*) FROM orders');
    assert.equal(allowed.status, 0, allowed.stderr as string);
  });

  it('restore saves the current database first', () => {
    const folder = path.join(backups, 'caliente_prod_db');
    const safety = readdirSync(folder).filter((f) => f.includes('-before-restore-'));
    assert.equal(safety.length, 1);
    const listing = sh(path.join(bin, 'pg_restore'), ['--list', path.join(folder, safety[0]!)]);
    assert.equal(listing.status, 0, listing.stderr as string);
    assert.match(listing.stdout as string, /TABLE public later caliente_prod/);
  });

  it('restore rejects a dump of another database', () => {
    const before = query('caliente_prod_db', 'SELECT count(*) FROM orders');
    const result = restore('--yes', 'caliente_prod_db', newestDump('caliente_staging_db'));
    assert.notEqual(result.status, 0);
    assert.match(result.stderr as string, /is not a dump of caliente_prod_db/);
    assert.equal(query('caliente_prod_db', 'SELECT count(*) FROM orders'), before);
  });

  it('restore needs --yes without a terminal', () => {
    const result = restore('caliente_prod_db', newestDump('caliente_prod_db'));
    assert.notEqual(result.status, 0);
    assert.match(result.stderr as string, /without --yes/);
  });

  it('restore into a missing database creates it', () => {
    const dump = newestDump('caliente_staging_db');
    const dropped = psql('postgres', 'postgres', 'DROP DATABASE caliente_staging_db WITH (FORCE)');
    assert.equal(dropped.status, 0, dropped.stderr as string);
    const result = restore('--yes', 'caliente_staging_db', dump);
    assert.equal(result.status, 0, result.stderr as string);
    assert.equal(
      query('caliente_staging_db', "SELECT count(*) FROM pg_tables WHERE tablename = 'probe'"),
      '1',
    );
  });
});
