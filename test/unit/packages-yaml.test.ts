import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { fullCollector } from '../../src/idle-collector.ts';
import { withYaml } from '../../src/packages.ts';

/** Files of the yaml package in require's cache. */
function cachedYamlFiles(): string[] {
  const cache = createRequire(import.meta.url).cache;
  return Object.keys(cache).filter((file) => file.includes('/node_modules/yaml/'));
}

describe('withYaml', () => {
  it('returns what its callback returns', () => {
    assert.deepEqual(
      withYaml((yaml) => yaml.parse('a: [1, 2]')),
      { a: [1, 2] },
    );
  });

  it('leaves no yaml module in the cache', () => {
    withYaml((yaml) => yaml.parse('a: 1'));

    assert.deepEqual(cachedYamlFiles(), []);
  });

  it('lets the collector free the package', async () => {
    let exports: WeakRef<object> | undefined;
    withYaml((yaml) => (exports = new WeakRef(yaml)));
    // A WeakRef keeps its target until the current job ends.
    await nextTurn();
    fullCollector()();

    assert.equal(exports?.deref(), undefined);
  });

  it('removes the cache entries when the callback throws', () => {
    assert.throws(() => withYaml((yaml) => yaml.parse('a: [1')), /Flow sequence/);

    assert.deepEqual(cachedYamlFiles(), []);
  });
});
