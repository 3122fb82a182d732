import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { flushPeriodically } from '../../src/log.ts';

const INTERVAL_MS = 5;

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

describe('periodic log flush', () => {
  it('waits for a pending flush', async () => {
    const callbacks: (() => void)[] = [];
    const logger = { flush: (callback?: () => void) => void callbacks.push(callback!) };
    const stop = flushPeriodically(logger, INTERVAL_MS);

    await delay(10 * INTERVAL_MS);
    assert.equal(callbacks.length, 1, 'one flush while the first is pending');

    callbacks[0]!();
    await delay(10 * INTERVAL_MS);
    stop();
    assert.equal(callbacks.length, 2, 'the next flush after the first completed');
  });

  it('stops flushing when stopped', async () => {
    let flushes = 0;
    const logger = {
      flush: (callback?: () => void) => {
        flushes++;
        callback?.();
      },
    };
    const stop = flushPeriodically(logger, INTERVAL_MS);
    await delay(10 * INTERVAL_MS);
    stop();
    const seen = flushes;
    await delay(10 * INTERVAL_MS);

    assert.ok(seen >= 3, `${seen} flushes in ${10 * INTERVAL_MS} ms`);
    assert.equal(flushes, seen);
  });
});
