import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fullCollector } from '../../src/idle-collector.ts';
import { loadMallocTrim, type MallocTrimLoad } from '../../src/malloc-trim.ts';

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

/** Returns why the addon did not load, or an empty string when it did. */
function reasonOf(loaded: MallocTrimLoad): string {
  return 'reason' in loaded ? loaded.reason : '';
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
    assert.ok(loaded.trim, `addon did not load: ${reasonOf(loaded)}`);
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

  /** Writes `content` as an addon next to the checksum of `checksumOf`, and returns why it fails. */
  function loadCopy(name: string, content: Buffer, checksumOf: Buffer = content): string {
    const file = join(workDir, name);
    writeFileSync(file, content);
    writeFileSync(`${file}.sha256`, `${createHash('sha256').update(checksumOf).digest('hex')}\n`);
    const loaded = loadMallocTrim(file);
    assert.equal(loaded.trim, undefined, `${name} must not load`);
    return reasonOf(loaded);
  }

  it('reports a missing addon', () => {
    const loaded = loadMallocTrim(join(workDir, 'absent.node'));

    assert.equal(loaded.trim, undefined);
    assert.match(reasonOf(loaded), /absent\.node not found \(build it with npm run build:native\)/);
  });

  it('reports a missing checksum file', () => {
    const file = join(workDir, 'unsigned.node');
    writeFileSync(file, readFileSync(addon));
    const loaded = loadMallocTrim(file);

    assert.equal(loaded.trim, undefined);
    assert.match(reasonOf(loaded), /unsigned\.node\.sha256 not found/);
  });

  it('skips damaged addons without loading them', () => {
    const whole = readFileSync(addon);
    for (const length of [1_000, 6_000, 12_000, whole.length - 1]) {
      const reason = loadCopy(`cut-${length}.node`, whole.subarray(0, length), whole);
      assert.match(reason, /does not match .*\.sha256; rebuild it/);
    }
    const zeroed = Buffer.from(whole);
    zeroed.fill(0, 0x1000);
    assert.match(loadCopy('zeroed.node', zeroed, whole), /does not match/);
  });

  it('reads no device or directory', () => {
    for (const [name, target] of [
      ['device.node', '/dev/zero'],
      ['directory.node', workDir],
    ]) {
      const file = join(workDir, name!);
      symlinkSync(target!, file);
      const loaded = loadMallocTrim(file);

      assert.equal(loaded.trim, undefined);
      assert.match(reasonOf(loaded), /cannot be read: not a regular file/);
    }
  });

  it('skips a cut addon whose checksum matches', () => {
    const whole = readFileSync(addon);
    for (const length of [1_000, 5_000, 12_000, whole.length - 1]) {
      const cut = whole.subarray(0, length);
      const reason = loadCopy(`cut-signed-${length}.node`, cut);
      assert.match(reason, /is cut short: its ELF headers reach past the end of the file/);
    }
  });

  it('names an addon built for another CPU', () => {
    const foreign = Buffer.from(readFileSync(addon));
    const otherMachine = process.arch === 'arm64' ? 62 : 183;
    foreign.writeUInt16LE(otherMachine, 18);

    assert.match(
      loadCopy('foreign.node', foreign),
      new RegExp(
        `built for another CPU \\(ELF machine ${otherMachine}, this is ${process.arch}\\)`,
      ),
    );
  });

  it('reports a file that is not an addon', () => {
    const reason = loadCopy('text.node', Buffer.from('not a shared object'));

    assert.match(reason, /loading .*text\.node failed: /);
  });
});
