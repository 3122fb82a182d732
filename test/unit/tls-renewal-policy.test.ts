import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  ALERT_RETRY_CAP_MS,
  renewalDueByLifetime,
  renewalInfoRecheckMs,
  retryDelayMs,
} from '../../src/tls/renewal-policy.ts';
import { DEFAULT_ACME_RETRY_SCHEDULE_MS } from '../../src/config/schema.ts';

const DAY_MS = 24 * 60 * 60 * 1000;
const HOUR_MS = 60 * 60 * 1000;

test('renewal falls due with a third of any lifetime left', () => {
  for (const days of [90, 64, 45, 6]) {
    const notBefore = Date.UTC(2026, 0, 1);
    const notAfter = notBefore + days * DAY_MS;
    const due = renewalDueByLifetime(notBefore, notAfter);
    assert.equal(notAfter - due, (days * DAY_MS) / 3, `${days}-day certificate`);
  }
});

test('retry waits follow the schedule, then repeat its last entry', () => {
  const waits = [1, 2, 3, 4, 5, 6, 7, 8, 9, 20].map((failures) =>
    retryDelayMs(DEFAULT_ACME_RETRY_SCHEDULE_MS, failures),
  );

  assert.deepEqual(waits.slice(0, 8), DEFAULT_ACME_RETRY_SCHEDULE_MS);
  assert.equal(waits[0], 60_000);
  assert.equal(waits[8], 24 * HOUR_MS);
  assert.equal(waits[9], 24 * HOUR_MS);
});

test('retry waits are capped at an hour near expiry', () => {
  const eightFailures = retryDelayMs(DEFAULT_ACME_RETRY_SCHEDULE_MS, 8, 20 * DAY_MS);
  const nearExpiry = retryDelayMs(DEFAULT_ACME_RETRY_SCHEDULE_MS, 8, 6 * DAY_MS);
  const firstNearExpiry = retryDelayMs(DEFAULT_ACME_RETRY_SCHEDULE_MS, 1, 6 * DAY_MS);

  assert.equal(eightFailures, 24 * HOUR_MS);
  assert.equal(nearExpiry, ALERT_RETRY_CAP_MS);
  assert.equal(firstNearExpiry, 60_000);
});

test('renewal info recheck honours Retry-After within bounds', () => {
  assert.equal(renewalInfoRecheckMs(undefined), 6 * HOUR_MS);
  assert.equal(renewalInfoRecheckMs(2 * HOUR_MS), 2 * HOUR_MS);
  assert.equal(renewalInfoRecheckMs(1_000), 60_000);
  assert.equal(renewalInfoRecheckMs(30 * DAY_MS), DAY_MS);
});
