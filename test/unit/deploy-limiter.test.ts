import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FailureLimiter } from '../../src/deploy/failure-limiter.ts';

const WINDOW_MS = 1_000;

function limiter(options: { maxTracked?: number } = {}) {
  let now = 0;
  const instance = new FailureLimiter({
    maxFailures: 2,
    windowMs: WINDOW_MS,
    now: () => now,
    ...options,
  });
  return { instance, advance: (ms: number) => (now += ms) };
}

describe('deploy failure limiter', () => {
  it('blocks a client after its failures', () => {
    const { instance } = limiter();
    instance.recordFailure('10.0.0.1');
    assert.equal(instance.retryAfterMs('10.0.0.1'), 0);

    instance.recordFailure('10.0.0.1');

    assert.equal(instance.retryAfterMs('10.0.0.1'), WINDOW_MS);
    assert.equal(instance.retryAfterMs('10.0.0.2'), 0);
  });

  it('groups IPv6 clients by /64', () => {
    const { instance } = limiter();
    instance.recordFailure('2001:db8:1:2::1');
    instance.recordFailure('2001:db8:1:2:ffff::9');

    assert.ok(instance.retryAfterMs('2001:db8:1:2::abcd') > 0);
    assert.equal(instance.retryAfterMs('2001:db8:1:3::1'), 0);
    assert.equal(instance.size, 1);
  });

  it('counts IPv4-mapped IPv6 as IPv4', () => {
    const { instance } = limiter();
    instance.recordFailure('::ffff:10.0.0.1');
    instance.recordFailure('10.0.0.1');

    assert.ok(instance.retryAfterMs('10.0.0.1') > 0);
  });

  it('unblocks a client when its window ends', () => {
    const { instance, advance } = limiter();
    instance.recordFailure('10.0.0.1');
    instance.recordFailure('10.0.0.1');

    advance(WINDOW_MS);

    assert.equal(instance.retryAfterMs('10.0.0.1'), 0);
  });

  it('drops ended windows', () => {
    const { instance, advance } = limiter();
    for (let i = 1; i <= 50; i++) instance.recordFailure(`10.0.0.${i}`);
    assert.equal(instance.size, 50);

    advance(WINDOW_MS);
    instance.recordFailure('10.0.1.1');

    assert.equal(instance.size, 1);
  });

  it('keeps windows still open', () => {
    const { instance, advance } = limiter();
    instance.recordFailure('10.0.0.1');
    advance(WINDOW_MS / 2);
    instance.recordFailure('10.0.0.2');

    advance(WINDOW_MS / 2);
    instance.recordFailure('10.0.0.3');

    assert.equal(instance.size, 2);
  });

  it('caps the number of tracked clients', () => {
    const { instance } = limiter({ maxTracked: 100 });
    for (let i = 0; i < 1_000; i++) instance.recordFailure(`10.0.${i >> 8}.${i & 255}`);

    assert.equal(instance.size, 100);
    instance.recordFailure('10.0.3.231');
    assert.ok(instance.retryAfterMs('10.0.3.231') > 0, 'the newest client is still counted');
    instance.recordFailure('10.0.0.0');
    assert.equal(instance.retryAfterMs('10.0.0.0'), 0, 'the oldest client was forgotten');
  });
});
