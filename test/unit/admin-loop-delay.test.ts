import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { EdgeSampler, LOOP_DELAY_PERIOD_MS } from '../../src/admin/edge-stats.ts';

describe('event-loop delay of the admin status', () => {
  it('reads near zero on an idle loop', async () => {
    let now = 0;
    const sampler = new EdgeSampler(
      () => [],
      0,
      () => now,
    );
    await sleep(300);
    now = LOOP_DELAY_PERIOD_MS;

    const delay = sampler.eventLoopDelay();

    // The sampling interval itself is 20 ms; an idle loop must not report it as delay.
    assert.ok(delay.meanMs < 5, `idle mean ${delay.meanMs} ms`);
    assert.ok(delay.p50Ms < 5, `idle p50 ${delay.p50Ms} ms`);
  });

  it('shows a loop blocked for 150 ms', async () => {
    let now = 0;
    const sampler = new EdgeSampler(
      () => [],
      0,
      () => now,
    );
    await sleep(50);
    const until = Date.now() + 150;
    while (Date.now() < until) {
      // Blocks the loop on purpose.
    }
    await sleep(50);
    now = LOOP_DELAY_PERIOD_MS;

    const delay = sampler.eventLoopDelay();

    assert.ok(delay.maxMs >= 100, `max ${delay.maxMs} ms after a 150 ms block`);
  });
});
