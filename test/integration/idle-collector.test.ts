import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runInNewContext } from 'node:vm';
import { parseConfig } from '../../src/config/load.ts';
import { startEdge } from '../../src/edge.ts';
import { fullCollector } from '../../src/idle-collector.ts';
import { httpsRequest } from '../support/upstreams.ts';
import { captureLogs } from '../unit/admin-fixtures.ts';

const MIB = 1024 * 1024;
const CHECK_INTERVAL_MS = 1_000;

async function waitFor(condition: () => boolean, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('idle collector on V8', () => {
  it('runs a full collection that frees old-generation garbage', async () => {
    const collect = fullCollector();
    let garbage: { index: number; text: string }[] | undefined = [];
    for (let i = 0; i < 400_000; i++) garbage.push({ index: i, text: `item ${i}` });
    // Scavenges in between move the survivors to the old generation.
    await new Promise((resolve) => setImmediate(resolve));
    const before = process.memoryUsage().heapUsed;

    garbage = undefined;
    collect();

    const freed = before - process.memoryUsage().heapUsed;
    assert.ok(freed > 15 * MIB, `freed ${(freed / MIB).toFixed(1)} MiB`);
    assert.equal(typeof (globalThis as { gc?: unknown }).gc, 'undefined', 'gc stays hidden');
    assert.equal(runInNewContext('typeof gc'), 'undefined', 'later contexts get no gc');
  });

  it('collects twice once a load on a real edge is over, then rests', async () => {
    const workDir = mkdtempSync(join(tmpdir(), 'edge-idle-'));
    mkdirSync(join(workDir, 'www'));
    writeFileSync(join(workDir, 'www', 'index.html'), '<h1>frontend</h1>');
    const config = parseConfig({
      listen: { address: '127.0.0.1', httpPort: 0, httpsPort: 0 },
      certsDir: join(workDir, 'certs'),
      stateDir: join(workDir, 'state'),
      docker: { socket: join(workDir, 'no-docker.sock') },
      log: { level: 'debug', access: false },
      sites: [
        {
          name: 'prod',
          hosts: ['app.example.test'],
          routes: [{ path: '/', static: join(workDir, 'www') }],
        },
      ],
    });
    const logs = captureLogs();
    const edge = await startEdge(config, logs.logger, { idleCheckIntervalMs: CHECK_INTERVAL_MS });
    try {
      const port = (edge.servers.https.address() as AddressInfo).port;
      const collector = edge.context.idleCollector!;
      await new Promise((resolve) => setTimeout(resolve, 3 * CHECK_INTERVAL_MS));
      assert.equal(collector.status().collections, 0, 'no collection before any load');

      const loadUntil = Date.now() + 4 * CHECK_INTERVAL_MS;
      while (Date.now() < loadUntil) {
        const batch = Array.from({ length: 8 }, () => httpsRequest(port, { path: '/' }));
        for (const response of await Promise.all(batch)) assert.equal(response.status, 200);
      }
      assert.equal(collector.status().collections, 0, 'no collection under load');

      await waitFor(
        () => collector.status().collections >= 2,
        'two collections',
        4 * CHECK_INTERVAL_MS,
      );
      await new Promise((resolve) => setTimeout(resolve, 4 * CHECK_INTERVAL_MS));
      assert.equal(collector.status().collections, 2, 'no further collection while idle');
      const lines = logs.lines.filter((line) => line.msg === 'collected garbage after load');
      assert.equal(lines.length, 2);
      assert.equal(lines[0]!.module, 'memory');
    } finally {
      await edge.stop();
      rmSync(workDir, { recursive: true, force: true });
    }
  });
});
