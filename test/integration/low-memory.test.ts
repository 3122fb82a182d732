import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import v8 from 'node:v8';
import { after, before, describe, it } from 'node:test';
import { fullCollector } from '../../src/idle-collector.ts';
import { loadLowMemoryNotification, type LowMemoryLoad } from '../../src/low-memory.ts';

const MIB = 1024 * 1024;

function newSpaceBytes(): number {
  return v8.getHeapSpaceStatistics().find((space) => space.space_name === 'new_space')!.space_size;
}

/** Allocates short-lived objects until V8 has grown its young generation. */
function churnYoungGeneration(): void {
  let recent: { index: number; text: string }[] = [];
  for (let i = 0; i < 2_000_000; i++) {
    recent.push({ index: i, text: `item ${i}` });
    if (recent.length > 20_000) recent = [];
  }
}

/** Returns why the addon did not load, or an empty string when it did. */
function reasonOf(loaded: LowMemoryLoad): string {
  return 'reason' in loaded ? loaded.reason : '';
}

describe('LowMemoryNotification addon', () => {
  let workDir: string;

  before(() => {
    workDir = mkdtempSync(join(tmpdir(), 'edge-low-memory-'));
    const build = spawnSync('bash', ['scripts/build-native.sh', workDir], { encoding: 'utf8' });
    assert.equal(build.status, 0, `scripts/build-native.sh failed: ${build.stderr}`);
  });

  after(() => rmSync(workDir, { recursive: true, force: true }));

  it('shrinks the young generation that a full collection keeps', () => {
    const loaded = loadLowMemoryNotification(join(workDir, 'low-memory.node'));
    assert.ok(loaded.notify, `addon did not load: ${reasonOf(loaded)}`);

    churnYoungGeneration();
    fullCollector()();
    const afterCollection = newSpaceBytes();
    loaded.notify();
    const afterNotification = newSpaceBytes();

    assert.ok(afterCollection > 2 * MIB, `young generation of ${afterCollection} bytes`);
    assert.ok(afterNotification <= 2 * MIB, `young generation of ${afterNotification} bytes`);
  });

  it('names an addon without the function', () => {
    const loaded = loadLowMemoryNotification(join(workDir, 'malloc-trim.node'));

    assert.equal(loaded.notify, undefined);
    assert.match(reasonOf(loaded), /malloc-trim\.node has no lowMemoryNotification function/);
  });

  it('reports a missing addon', () => {
    const loaded = loadLowMemoryNotification(join(workDir, 'absent.node'));

    assert.equal(loaded.notify, undefined);
    assert.match(reasonOf(loaded), /absent\.node not found \(build it with npm run build:native\)/);
  });
});
