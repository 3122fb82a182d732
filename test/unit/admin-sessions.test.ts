import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { clientKey, LoginRateLimiter } from '../../src/admin/login-limiter.ts';
import { SessionStore } from '../../src/admin/sessions.ts';

describe('admin session store', () => {
  it('creates random ids and CSRF tokens', () => {
    const store = new SessionStore({ ttlMs: 1000 });
    const first = store.create('127.0.0.1');
    const second = store.create('127.0.0.1');
    assert.match(first.id, /^[A-Za-z0-9_-]{43}$/);
    assert.notEqual(first.id, second.id);
    assert.notEqual(first.csrfToken, second.csrfToken);
    assert.notEqual(first.id, first.csrfToken);
  });

  it('expires a session after its TTL, not extended by use', () => {
    let now = 1_000_000;
    const store = new SessionStore({ ttlMs: 1000, now: () => now });
    const session = store.create('127.0.0.1');

    now += 999;
    assert.equal(store.get(session.id), session);
    now += 1;
    assert.equal(store.get(session.id), undefined);
    assert.equal(store.size, 0, 'expired session removed');
  });

  it('drops the oldest session past the limit', () => {
    const store = new SessionStore({ ttlMs: 60_000, maxSessions: 2 });
    const first = store.create('a');
    const second = store.create('b');
    const third = store.create('c');
    assert.equal(store.get(first.id), undefined);
    assert.equal(store.get(second.id), second);
    assert.equal(store.get(third.id), third);
  });
});

describe('admin login rate limiter', () => {
  it('allows maxFailures attempts per window', () => {
    let now = 0;
    const limiter = new LoginRateLimiter({ maxFailures: 2, windowMs: 1000, now: () => now });
    assert.equal(limiter.acquireAttempt('192.0.2.1'), 0);
    assert.equal(limiter.acquireAttempt('192.0.2.1'), 0);
    assert.equal(limiter.acquireAttempt('192.0.2.1'), 1000);
    assert.equal(limiter.acquireAttempt('192.0.2.2'), 0, 'other clients unaffected');

    now = 400;
    assert.equal(limiter.acquireAttempt('192.0.2.1'), 600);
    now = 1000;
    assert.equal(limiter.acquireAttempt('192.0.2.1'), 0, 'new window');
  });

  it('forgets a client after a successful login', () => {
    const limiter = new LoginRateLimiter({ maxFailures: 1, windowMs: 1000 });
    assert.equal(limiter.acquireAttempt('192.0.2.1'), 0);
    limiter.recordSuccess('192.0.2.1');
    assert.equal(limiter.acquireAttempt('192.0.2.1'), 0);
  });

  it('groups IPv6 by /64 and unwraps IPv4-mapped addresses', () => {
    assert.equal(clientKey('::ffff:192.0.2.7'), '192.0.2.7');
    assert.equal(clientKey('2001:db8:1:2:aaaa::1'), clientKey('2001:db8:1:2:bbbb::2'));
    assert.notEqual(clientKey('2001:db8:1:2::1'), clientKey('2001:db8:1:3::1'));

    const limiter = new LoginRateLimiter({ maxFailures: 1, windowMs: 1000 });
    assert.equal(limiter.acquireAttempt('2001:db8:1:2::1'), 0);
    assert.ok(limiter.acquireAttempt('2001:db8:1:2::ffff') > 0, 'same /64 shares the limit');
    assert.equal(limiter.acquireAttempt('::ffff:192.0.2.7'), 0);
    assert.ok(limiter.acquireAttempt('192.0.2.7') > 0, 'mapped and plain IPv4 share the limit');
  });
});
