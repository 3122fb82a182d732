import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, it } from 'node:test';
import { runInNewContext } from 'node:vm';
import { fullCollector } from '../../src/idle-collector.ts';
import { delay, httpsRequest, waitUntil } from '../support/upstreams.ts';

const MIB = 1024 * 1024;
/** Long enough that the edge's own work after a load (closing sockets, V8's sweeping) stays
 * below the busy share of one interval. */
const CHECK_INTERVAL_MS = 2_000;
const CHILD = join(import.meta.dirname, '..', 'support', 'idle-edge-child.ts');

interface LogLine {
  msg?: string;
  module?: string;
  remaining?: number;
  mallocTrimReleased?: boolean | null;
}

interface EdgeProcess {
  httpsPort: number;
  /** Log lines of the idle collections so far. */
  collections(): LogLine[];
  /** Log lines of the collection right after start. */
  startCollections(): LogLine[];
  /** Everything the process printed, for failure messages. */
  output(): string;
  stop(): Promise<void>;
}

/** Starts a real edge in a process of its own, so the test's CPU time never reaches its collector. */
async function startEdgeProcess(workDir: string): Promise<EdgeProcess> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', CHILD, workDir, String(CHECK_INTERVAL_MS)],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const lines: LogLine[] = [];
  const printed: string[] = [];
  let httpsPort = 0;
  createInterface({ input: child.stdout }).on('line', (text) => {
    printed.push(text);
    const line = JSON.parse(text) as LogLine & { ready?: boolean; httpsPort?: number };
    if (line.ready === true) httpsPort = line.httpsPort!;
    else lines.push(line);
  });
  child.stderr.on('data', (chunk: Buffer) => printed.push(chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await waitUntil(() => httpsPort !== 0 || child.exitCode !== null, 30_000, 'the edge to listen');
    if (httpsPort === 0) throw new Error(`edge exited before listening: ${printed.join('\n')}`);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return {
    httpsPort,
    collections: () => lines.filter((line) => line.msg === 'collected garbage after load'),
    startCollections: () => lines.filter((line) => line.msg === 'collected garbage after start'),
    output: () => printed.join('\n'),
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
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
    const edge = await startEdgeProcess(workDir);
    try {
      await delay(3 * CHECK_INTERVAL_MS);
      assert.deepEqual(edge.collections(), [], 'no collection before any load');
      assert.equal(edge.startCollections().length, 1, edge.output());

      const loadUntil = Date.now() + 3 * CHECK_INTERVAL_MS;
      while (Date.now() < loadUntil) {
        const batch = Array.from({ length: 8 }, () => httpsRequest(edge.httpsPort, { path: '/' }));
        for (const response of await Promise.all(batch)) assert.equal(response.status, 200);
      }
      assert.deepEqual(edge.collections(), [], 'no collection under load');

      await waitUntil(() => edge.collections().length >= 2, 6 * CHECK_INTERVAL_MS);
      await delay(4 * CHECK_INTERVAL_MS);
      const collections = edge.collections();
      assert.equal(collections.length, 2, `no further collection while idle: ${edge.output()}`);
      assert.equal(collections[0]!.module, 'memory');
      assert.deepEqual(
        collections.map((line) => line.remaining),
        [1, 0],
      );
      for (const line of collections) {
        assert.equal(typeof line.mallocTrimReleased, 'boolean', 'malloc_trim ran after it');
      }
    } finally {
      await edge.stop();
      rmSync(workDir, { recursive: true, force: true });
    }
  });
});
