import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { createLogger } from '../../src/log.ts';
import { AccessLog, type AccessEntry } from '../../src/proxy/access-log.ts';

function capture(
  level = 'info',
  minLength = 0,
): {
  log: (enabled: boolean) => AccessLog;
  lines: string[];
  writes: string[];
} {
  const lines: string[] = [];
  const writes: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      writes.push(chunk.toString());
      lines.push(
        ...chunk
          .toString()
          .split('\n')
          .filter((line) => line !== ''),
      );
      callback();
    },
  });
  // Like sonic-boom, which pino's own destination is, announce the bytes buffered before a write.
  if (minLength > 0) Object.assign(destination, { minLength });
  const logger = createLogger({ level, destination });
  return { log: (enabled) => new AccessLog(logger, enabled), lines, writes };
}

const entry: AccessEntry = {
  reqId: 'r-1',
  site: 'prod',
  route: '/api/',
  method: 'GET',
  host: 'app.example.test',
  path: '/api/x?q="quoted"\\',
  status: 200,
  durationMs: 1.23456,
  bytes: 42,
  upstream: 'http://backend:8000',
  client: '203.0.113.7',
};

describe('AccessLog', () => {
  it('writes one JSON line in pino format with the fixed fields', () => {
    const { log, lines } = capture();
    const access = log(true);
    access.write(entry);
    access.flush();
    assert.equal(lines.length, 1);
    const line = JSON.parse(lines[0]!) as Record<string, unknown>;
    assert.equal(line.level, 30);
    assert.equal(line.msg, 'request');
    assert.ok(!Number.isNaN(Date.parse(String(line.time))));
    assert.equal(line.path, entry.path);
    assert.equal(line.durationMs, 1.235);
    assert.deepEqual(Object.keys(line), [
      'level',
      'time',
      'reqId',
      'site',
      'route',
      'method',
      'host',
      'path',
      'status',
      'durationMs',
      'bytes',
      'upstream',
      'client',
      'msg',
    ]);
  });

  it('writes nothing when access logging is off or info is below the level', async () => {
    const off = capture();
    off.log(false).write(entry);
    const quiet = capture('warn');
    quiet.log(true).write(entry);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(off.lines.length, 0);
    assert.equal(quiet.lines.length, 0);
  });

  it('writes the lines of one loop turn at once', async () => {
    const { log, lines, writes } = capture();
    const access = log(true);
    for (let i = 0; i < 3; i++) access.write({ ...entry, reqId: `r-${i}` });
    assert.equal(lines.length, 0);

    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(writes.length, 1);
    assert.deepEqual(
      lines.map((line) => (JSON.parse(line) as { reqId: string }).reqId),
      ['r-0', 'r-1', 'r-2'],
    );
  });

  it('collects lines up to the minLength of a buffering destination', async () => {
    const { log, writes } = capture('info', 1000);
    const access = log(true);
    access.write(entry);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(writes.length, 0);

    for (let i = 0; i < 4; i++) access.write(entry);
    assert.equal(writes.length, 1);
    assert.ok(writes[0]!.length >= 1000);
  });

  it('writes a partial batch after a short delay', async () => {
    const { log, lines } = capture('info', 100_000);
    log(true).write(entry);
    await new Promise((resolve) => setTimeout(resolve, 400));
    assert.equal(lines.length, 1);
  });

  it('writes held lines when the process exits', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'edge-access-log-'));
    const file = path.join(dir, 'out.log');
    const script = [
      "import { openSync } from 'node:fs';",
      "import pino from 'pino';",
      "import { AccessLog } from './src/proxy/access-log.ts';",
      // An open descriptor, as stdout is in production: a path would be opened asynchronously.
      `const fd = openSync(${JSON.stringify(file)}, 'w');`,
      'const destination = pino.destination({ dest: fd, sync: false, minLength: 4096 });',
      'const log = new AccessLog(pino({}, destination), true);',
      `log.write(${JSON.stringify(entry)});`,
      'process.exit(0);',
    ].join('\n');
    const child = spawnSync(process.execPath, [
      '--import',
      'tsx',
      '--input-type=module',
      '-e',
      script,
    ]);
    assert.equal(child.status, 0, child.stderr.toString());
    const lines = readFileSync(file, 'utf8')
      .split('\n')
      .filter((line) => line !== '');
    rmSync(dir, { recursive: true });
    assert.equal(lines.length, 1);
    assert.equal((JSON.parse(lines[0]!) as { reqId: string }).reqId, entry.reqId);
  });

  it('escapes control characters, quotes and non-ASCII in fields', () => {
    const { log, lines } = capture();
    const access = log(true);
    const host = 'h\u0001"\\é';
    access.write({ ...entry, host });
    access.flush();
    assert.equal((JSON.parse(lines[0]!) as { host: string }).host, host);
  });
});
