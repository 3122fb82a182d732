import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { productionNodeOptions } from '../../bench/lib/edge-config.ts';

/** Allocates short-lived objects until V8 has grown its young generation, then prints its size. */
const ALLOCATE_AND_REPORT = `
let kept = [];
for (let i = 0; i < 2e6; i++) {
  kept.push({ i, text: 'x' + i });
  if (kept.length > 20000) kept = [];
}
const space = require('node:v8').getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
process.stdout.write(String(space.space_size));
`;
const MB = 1024 * 1024;

describe('image node options', () => {
  it('caps the young generation under allocation', () => {
    const options = productionNodeOptions();
    assert.ok(options.includes('--max-semi-space-size=2'), options.join(' '));

    const result = spawnSync(process.execPath, [...options, '-e', ALLOCATE_AND_REPORT], {
      encoding: 'utf8',
    });
    assert.equal(result.status, 0, result.stderr);
    // Two semi-spaces of 2 MB. Without the option Node 20 grows them to 16 MB each.
    assert.ok(Number(result.stdout) <= 4 * MB, `new space ${result.stdout} bytes`);
  });
});
