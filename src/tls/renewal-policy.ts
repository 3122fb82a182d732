/**
 * When certificates are renewed and failed attempts retried. Durations are milliseconds.
 * Nothing here assumes a lifetime: Let's Encrypt moves from 90-day to 64-day and 45-day
 * certificates, and test CAs issue certificates valid for minutes.
 */

/** Renewal starts when this fraction of the certificate's lifetime is left. */
export const RENEW_REMAINING_FRACTION = 1 / 3;

/** Below this much validity left, the status flags the certificate and retries get faster. */
export const EXPIRY_ALERT_MS = 7 * 24 * 60 * 60 * 1000;

/** Maximum retry wait while a certificate is inside EXPIRY_ALERT_MS of its expiry. */
export const ALERT_RETRY_CAP_MS = 60 * 60 * 1000;

/** Renewal information is fetched again after this long when the CA sends no Retry-After. */
export const DEFAULT_RENEWAL_INFO_RECHECK_MS = 6 * 60 * 60 * 1000;
export const MIN_RENEWAL_INFO_RECHECK_MS = 60 * 1000;
export const MAX_RENEWAL_INFO_RECHECK_MS = 24 * 60 * 60 * 1000;

/** Returns when a certificate with this validity falls due for renewal by lifetime alone. */
export function renewalDueByLifetime(notBefore: number, notAfter: number): number {
  const lifetime = notAfter - notBefore;
  return notAfter - lifetime * RENEW_REMAINING_FRACTION;
}

/**
 * Returns the wait after the `failures`-th consecutive failure: entry `failures - 1` of the
 * schedule, the last entry once the schedule runs out. While the current certificate expires
 * within EXPIRY_ALERT_MS the wait is capped at ALERT_RETRY_CAP_MS, so a certificate close to
 * expiry is retried at least hourly.
 */
export function retryDelayMs(
  schedule: readonly number[],
  failures: number,
  remainingValidityMs?: number,
): number {
  const index = Math.min(Math.max(failures, 1), schedule.length) - 1;
  const delay = schedule[index] ?? ALERT_RETRY_CAP_MS;
  const alert = remainingValidityMs !== undefined && remainingValidityMs < EXPIRY_ALERT_MS;

  return alert ? Math.min(delay, ALERT_RETRY_CAP_MS) : delay;
}

/** Picks the moment to renew inside a CA-suggested window (RFC 9773 section 4.2). */
export function pickInWindow(start: number, end: number, random: () => number): number {
  return start + Math.floor((end - start) * random());
}

/** Returns the wait before renewal information is fetched again, from the CA's Retry-After. */
export function renewalInfoRecheckMs(retryAfterMs: number | undefined): number {
  const requested = retryAfterMs ?? DEFAULT_RENEWAL_INFO_RECHECK_MS;
  return Math.min(Math.max(requested, MIN_RENEWAL_INFO_RECHECK_MS), MAX_RENEWAL_INFO_RECHECK_MS);
}
