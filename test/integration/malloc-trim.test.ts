import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fullCollector } from '../../src/idle-collector.ts';
import { loadMallocTrim } from '../../src/malloc-trim.ts';

const MIB = 1024 * 1024;
const BUFFERS = 40_000;
const BUFFER_BYTES = 1_000;
/** One buffer in each group of this many stays alive. */
const GROUP = 16;

/**
 * Leaves about 37 MB of free memory inside glibc's heap. Buffers of 1,000 bytes live in malloc'd
 * memory, and keeping one of every 16 leaves free runs of about 15 KB between live buffers. glibc
 * returns free memory on its own only from the top of the heap, so these pages stay resident.
 */
function fragmentHeap(): Buffer[] {
  const all: Buffer[] = [];
  for (let i = 0; i < BUFFERS; i++) all.push(Buffer.allocUnsafeSlow(BUFFER_BYTES).fill(i % 256));
  const survivors = all.filter((_, i) => i % GROUP === 0);
  all.length = 0;
  return survivors;
}

/** Collects the freed buffers, then waits for V8's threads to unmap the pages of its own heap. */
async function settle(collect: () => void): Promise<void> {
  collect();
  await delay(300);
  collect();
  await delay(500);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

describe('malloc_trim addon', () => {
  let workDir: string;
  let addon: string;

  before(() => {
    workDir = mkdtempSync(join(tmpdir(), 'edge-trim-'));
    const build = spawnSync('bash', ['scripts/build-native.sh', join(workDir, 'build')], {
      encoding: 'utf8',
    });
    assert.equal(build.status, 0, `scripts/build-native.sh failed: ${build.stderr}`);
    addon = join(workDir, 'build', 'malloc-trim.node');
  });

  after(() => rmSync(workDir, { recursive: true, force: true }));

  it('returns freed heap memory to the system', async () => {
    const loaded = loadMallocTrim(addon);
    assert.ok(loaded.trim, `addon did not load: ${'reason' in loaded ? loaded.reason : ''}`);
    const collect = fullCollector();
    loaded.trim();

    const survivors = fragmentHeap();
    await settle(collect);
    const beforeWait = process.memoryUsage().rss;
    await delay(300);
    const beforeTrim = process.memoryUsage().rss;
    const released = loaded.trim();
    const afterTrim = process.memoryUsage().rss;

    assert.equal(survivors.length, BUFFERS / GROUP);
    assert.ok(
      Math.abs(beforeTrim - beforeWait) < 8 * MIB,
      `RSS moved by ${((beforeTrim - beforeWait) / MIB).toFixed(1)} MiB without a trim`,
    );
    assert.equal(released, true);
    assert.ok(
      beforeTrim - afterTrim > 16 * MIB,
      `trim gave back ${((beforeTrim - afterTrim) / MIB).toFixed(1)} MiB`,
    );
  });

  it('reports a missing addon', () => {
    const loaded = loadMallocTrim(join(workDir, 'absent.node'));

    assert.equal(loaded.trim, undefined);
    assert.match('reason' in loaded ? loaded.reason : '', /absent\.node not found/);
  });

  it('reports a truncated addon without loading it', () => {
    const whole = readFileSync(addon);
    for (const length of [1_000, 6_000, 12_000, whole.length - 1]) {
      const file = join(workDir, `cut-${length}.node`);
      writeFileSync(file, whole.subarray(0, length));
      const loaded = loadMallocTrim(file);

      assert.equal(loaded.trim, undefined);
      assert.match('reason' in loaded ? loaded.reason : '', new RegExp(`truncated: ${length} of`));
    }
  });

  it('reports a file that is not an addon', () => {
    const file = join(workDir, 'text.node');
    writeFileSync(file, 'not a shared object');
    const loaded = loadMallocTrim(file);

    assert.equal(loaded.trim, undefined);
    assert.match('reason' in loaded ? loaded.reason : '', /loading .*text\.node failed: /);
  });
});
