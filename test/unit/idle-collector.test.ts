import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { BUSY_CPU_SHARE, IdleCollector } from '../../src/idle-collector.ts';
import { captureLogs } from './admin-fixtures.ts';

const INTERVAL_MS = 1_000;
const MIB = 1024 * 1024;

/** Builds a collector on a fake clock and CPU meter, driven by `tick`. */
function fakeCollector(
  options: {
    collect?: () => void;
    collectCpuMs?: number;
    reduce?: () => void;
    trim?: () => boolean;
  } = {},
) {
  let cpuMicros = 0;
  let now = 0;
  let rss = 90 * MIB;
  let collections = 0;
  const logs = captureLogs();
  const collector = new IdleCollector({
    logger: logs.logger,
    intervalMs: INTERVAL_MS,
    cpuMicros: () => cpuMicros,
    now: () => now,
    memory: () => ({ heapTotal: rss / 4, rss }),
    collect: () => {
      collections++;
      cpuMicros += (options.collectCpuMs ?? 0) * 1000;
      rss -= 8 * MIB;
      options.collect?.();
    },
    reduce: options.reduce,
    trim: options.trim,
  });
  collector.start();
  collector.stop();
  return {
    collector,
    logs: logs.lines,
    collections: () => collections,
    /** Ends one interval in which the process used `cpuShare` of a core. */
    tick(cpuShare: number) {
      now += INTERVAL_MS;
      cpuMicros += cpuShare * INTERVAL_MS * 1000;
      collector.check();
    },
  };
}

describe('idle collector', () => {
  it('never collects while the process stays idle', () => {
    const fake = fakeCollector();
    for (let i = 0; i < 20; i++) fake.tick(BUSY_CPU_SHARE / 2);

    assert.equal(fake.collections(), 0);
    assert.equal(fake.collector.status().collections, 0);
    assert.equal(fake.collector.status().latest, undefined);
  });

  it('collects in the first two quiet intervals after a load, then stops', () => {
    const fake = fakeCollector();
    fake.tick(0.9);
    fake.tick(0.5);
    assert.equal(fake.collections(), 0, 'no collection while busy');

    fake.tick(0);
    assert.equal(fake.collections(), 1);
    fake.tick(0.001);
    assert.equal(fake.collections(), 2);
    for (let i = 0; i < 10; i++) fake.tick(0);
    assert.equal(fake.collections(), 2);
  });

  it('starts over after each load', () => {
    const fake = fakeCollector();
    for (let load = 0; load < 3; load++) {
      fake.tick(0.5);
      for (let i = 0; i < 4; i++) fake.tick(0);
    }

    assert.equal(fake.collections(), 6);
  });

  it('does not count its own collections as load', () => {
    const fake = fakeCollector({ collectCpuMs: INTERVAL_MS / 2 });
    fake.tick(0.5);
    for (let i = 0; i < 10; i++) fake.tick(0);

    assert.equal(fake.collections(), 2);
  });

  const quiet = (intervals: number): number[] => new Array<number>(intervals).fill(0);
  for (const { name, shares, collections } of [
    {
      name: 'ignores V8 background work after a collection',
      shares: [0.5, 0, 0.3, 0.3, ...quiet(10)],
      collections: 2,
    },
    {
      name: 'counts load in the second interval after a collection',
      shares: [0.5, 0, 0, 0, 0.5, 0],
      collections: 3,
    },
  ]) {
    it(name, () => {
      const fake = fakeCollector();
      for (const share of shares) fake.tick(share);

      assert.equal(fake.collections(), collections);
    });
  }

  it('reports the latest collection with the memory before and after', () => {
    const fake = fakeCollector();
    fake.tick(0.5);
    fake.tick(0);

    const { collections, latest } = fake.collector.status();
    assert.equal(collections, 1);
    assert.equal(latest?.at, 2 * INTERVAL_MS);
    assert.equal(latest?.rssBefore, 90 * MIB);
    assert.equal(latest?.rssAfter, 82 * MIB);
    assert.equal(latest?.heapTotalBefore, (90 * MIB) / 4);
    const line = fake.logs.find((entry) => entry.msg === 'collected garbage after load');
    assert.equal(line?.rssAfter, 82 * MIB);
    assert.equal(line?.remaining, 1);
  });

  it('logs a failed collection and stays up', () => {
    const fake = fakeCollector({
      collect: () => {
        throw new Error('collection refused');
      },
    });
    fake.tick(0.5);
    fake.tick(0);
    fake.tick(0);

    assert.equal(fake.collections(), 1, 'no retry until the next load');
    assert.equal(fake.collector.status().collections, 0);
    const warning = fake.logs.find((entry) => entry.msg === 'idle garbage collection failed');
    assert.match(String((warning?.err as { message?: string })?.message), /collection refused/);
  });

  it('trims the C heap after each collection', () => {
    const steps: string[] = [];
    const fake = fakeCollector({
      collect: () => steps.push('collect'),
      trim: () => {
        steps.push('trim');
        return steps.length === 2;
      },
    });
    fake.tick(0.5);
    fake.tick(0);
    fake.tick(0);

    assert.deepEqual(steps, ['collect', 'trim', 'collect', 'trim']);
    assert.equal(fake.collector.status().mallocTrim, true);
    assert.equal(fake.collector.status().latest?.mallocTrimReleased, false);
    const lines = fake.logs.filter((entry) => entry.msg === 'collected garbage after load');
    assert.deepEqual(
      lines.map((line) => line.mallocTrimReleased),
      [true, false],
    );
  });

  it('reports no trim without the addon', () => {
    const fake = fakeCollector();
    fake.tick(0.5);
    fake.tick(0);

    assert.equal(fake.collector.status().mallocTrim, false);
    assert.equal(fake.collector.status().latest?.mallocTrimReleased, null);
  });

  it('stops trimming after a failed trim', () => {
    let trims = 0;
    const fake = fakeCollector({
      trim: () => {
        trims++;
        throw new Error('trim crashed');
      },
    });
    fake.tick(0.5);
    fake.tick(0);
    fake.tick(0);

    assert.equal(fake.collections(), 2, 'collections go on');
    assert.equal(trims, 1);
    assert.equal(fake.collector.status().mallocTrim, false);
    const warning = fake.logs.find((entry) => String(entry.msg).startsWith('malloc_trim failed'));
    assert.match(String((warning?.err as { message?: string })?.message), /trim crashed/);
  });

  it('reduces memory once after start, then trims', () => {
    const steps: string[] = [];
    const fake = fakeCollector({
      reduce: () => steps.push('reduce'),
      trim: () => steps.push('trim') > 0,
    });
    fake.collector.collectAfterStart();

    assert.deepEqual(steps, ['reduce', 'trim']);
    assert.equal(fake.collections(), 0, 'no plain collection');
    assert.equal(fake.collector.status().collections, 1);
    const line = fake.logs.find((entry) => entry.msg === 'collected garbage after start');
    assert.equal(line?.mallocTrimReleased, true);
  });

  it('collects after start without the reduce function', () => {
    const fake = fakeCollector();
    fake.collector.collectAfterStart();

    assert.equal(fake.collections(), 1);
    assert.equal(fake.collector.status().latest?.rssAfter, 82 * MIB);
  });

  it('does not count the collection after start as load', () => {
    const fake = fakeCollector({ collectCpuMs: INTERVAL_MS / 2 });
    fake.collector.collectAfterStart();
    for (let i = 0; i < 5; i++) fake.tick(0);

    assert.equal(fake.collections(), 1);
  });

  it('checks on its timer until stopped', async () => {
    const collector = new IdleCollector({
      logger: pino({ level: 'silent' }),
      intervalMs: 5,
      collect: () => {},
    });
    let checks = 0;
    const original = collector.check.bind(collector);
    collector.check = () => {
      checks++;
      original();
    };
    collector.start();
    await new Promise((resolve) => setTimeout(resolve, 60));
    collector.stop();
    const seen = checks;
    await new Promise((resolve) => setTimeout(resolve, 30));

    assert.ok(seen >= 3, `${seen} checks in 60 ms`);
    assert.equal(checks, seen, 'stop ends the checks');
  });
});
