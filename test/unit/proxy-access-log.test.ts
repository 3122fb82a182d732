import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { createLogger } from '../../src/log.ts';
import { AccessLog, type AccessEntry } from '../../src/proxy/access-log.ts';

function capture(level = 'info'): {
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

  it('escapes control characters, quotes and non-ASCII in fields', () => {
    const { log, lines } = capture();
    const access = log(true);
    const host = 'h\u0001"\\é';
    access.write({ ...entry, host });
    access.flush();
    assert.equal((JSON.parse(lines[0]!) as { host: string }).host, host);
  });
});
