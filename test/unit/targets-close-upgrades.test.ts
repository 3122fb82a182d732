import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Target } from '../../src/targets/registry.ts';

describe('target closeUpgrades', () => {
  it('returns at once without open WebSockets', async () => {
    const target = new Target('http://127.0.0.1:9');
    let resolved = false;
    const closing = target.closeUpgrades(1012, 60_000, 0).then(() => {
      resolved = true;
    });
    await new Promise((resolve) => setImmediate(resolve));
    assert.ok(resolved, 'resolved without waiting out the 60 s grace period');
    await closing;
  });

  it('closes open WebSockets with the code after the grace', async () => {
    const target = new Target('http://127.0.0.1:9');
    const codes: number[] = [];
    target.upgrades.add({ close: (code) => codes.push(code) });
    target.upgrades.add({ close: (code) => codes.push(code) });
    await target.closeUpgrades(1012, 10, 10);
    assert.deepEqual(codes, [1012, 1012]);
  });
});
