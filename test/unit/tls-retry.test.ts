import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { createLogger } from '../../src/log.ts';
import { AcmeProblemError, PROBLEM_RATE_LIMITED } from '../../src/tls/acme-problem.ts';
import {
  acmeConfig,
  DAY_MS,
  FakeClock,
  FakeIssuer,
  fetchPeerCertificate,
  startManager,
  startTlsServer,
  waitFor,
} from '../support/acme-fakes.ts';

const SITES = { production: ['example.test', 'www.example.test'] };
const CONNECTION_PROBLEM = 'urn:ietf:params:acme:error:connection';

function connectionError(): AcmeProblemError {
  return new AcmeProblemError('127.0.0.1: Connection refused', { problemType: CONNECTION_PROBLEM });
}

function settle(ms = 80): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

test('failed issuance is retried on the schedule', async (t) => {
  const clock = new FakeClock();
  const issuer = new FakeIssuer(clock);
  issuer.failures.push(connectionError(), connectionError());
  const manager = await startManager(await acmeConfig(SITES), issuer, clock);
  t.after(() => manager.stop());

  await waitFor(() => manager.status()[0]?.state === 'failed', 5_000, 'failure');
  const failed = manager.status()[0]!;
  assert.equal(failed.lastError?.type, CONNECTION_PROBLEM);
  assert.match(failed.lastError?.message ?? '', /Connection refused/);
  assert.equal(Date.parse(failed.nextAttemptAt!) - Date.parse(failed.lastAttemptAt!), 60_000);

  clock.advance(59_000);
  await settle();
  assert.equal(issuer.orders.length, 1, 'no order before the first retry wait');

  clock.advance(2_000);
  await waitFor(() => issuer.orders.length === 2, 5_000, 'first retry');
  await waitFor(() => manager.status()[0]?.lastError?.at !== failed.lastError?.at);
  const second = manager.status()[0]!;
  assert.equal(Date.parse(second.nextAttemptAt!) - Date.parse(second.lastAttemptAt!), 300_000);

  clock.advance(300_000);
  await waitFor(() => manager.status()[0]?.state === 'valid', 5_000, 'success');
  assert.equal(issuer.orders.length, 3);
  assert.equal(manager.status()[0]?.lastError, undefined);
});

test('failed renewal is retried by the timer and keeps the old certificate', async (t) => {
  const clock = new FakeClock();
  const issuer = new FakeIssuer(clock, 60 * DAY_MS);
  const manager = await startManager(await acmeConfig(SITES), issuer, clock);
  const server = await startTlsServer(manager);
  t.after(async () => {
    await server.close();
    await manager.stop();
  });
  await waitFor(() => manager.status()[0]?.state === 'valid');
  const original = manager.status()[0]!;

  // 20 days left: inside the renewal window; the CA fails the first attempt.
  issuer.failures.push(connectionError());
  clock.advance(40 * DAY_MS);
  await waitFor(() => manager.status()[0]?.lastError !== undefined, 5_000, 'failed renewal');

  const failed = manager.status()[0]!;
  assert.equal(failed.state, 'valid');
  assert.equal(failed.serial, original.serial);
  const served = await fetchPeerCertificate(server.port, 'www.example.test');
  assert.equal(served.serialNumber.toLowerCase(), original.serial);

  // No handshake from here on: only the renewal loop can place the retry.
  clock.advance(61_000);
  await waitFor(() => manager.status()[0]?.serial !== original.serial, 5_000, 'renewed');
  assert.equal(issuer.orders.length, 3);
  assert.equal(manager.status()[0]?.lastError, undefined);
});

test('rate limit is honoured until Retry-After, across restarts', async (t) => {
  const clock = new FakeClock();
  const issuer = new FakeIssuer(clock);
  const config = await acmeConfig(SITES);
  issuer.failures.push(
    new AcmeProblemError('too many certificates already issued', {
      problemType: PROBLEM_RATE_LIMITED,
      httpStatus: 429,
      retryAfterMs: 3_600_000,
    }),
  );
  let manager = await startManager(config, issuer, clock);
  let server = await startTlsServer(manager);
  t.after(async () => {
    await server.close();
    await manager.stop();
  });

  await waitFor(() => manager.status()[0]?.state === 'failed', 5_000, 'rate limit');
  const limited = manager.status()[0]!;
  assert.equal(Date.parse(limited.rateLimitedUntil!), clock.now() + 3_600_000);
  assert.equal(limited.lastError?.type, PROBLEM_RATE_LIMITED);
  const fallback = await fetchPeerCertificate(server.port, 'example.test');
  assert.match(fallback.subjectaltname ?? '', /DNS:example\.test/);
  await assert.rejects(manager.renewNow('example.test'), {
    code: 'EDGE_ACME_RATE_LIMITED',
    status: 429,
  });

  await server.close();
  await manager.stop();
  manager = await startManager(config, issuer, clock);
  server = await startTlsServer(manager);
  clock.advance(3_599_000);
  await settle();
  assert.equal(issuer.orders.length, 1, 'no order before Retry-After');
  assert.equal(manager.status()[0]?.rateLimitedUntil, limited.rateLimitedUntil);

  clock.advance(2_000);
  await waitFor(() => manager.status()[0]?.state === 'valid', 5_000, 'order after Retry-After');
  assert.equal(manager.status()[0]?.rateLimitedUntil, undefined);
});

test('failure log names the hosts, directory and problem type', async (t) => {
  const clock = new FakeClock();
  const issuer = new FakeIssuer(clock);
  issuer.failures.push(connectionError());
  const lines: Record<string, unknown>[] = [];
  const destination = new PassThrough();
  destination.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line));
  });
  const logger = createLogger({ level: 'info', destination });
  const manager = await startManager(await acmeConfig(SITES), issuer, clock, logger);
  t.after(() => manager.stop());

  await waitFor(
    () => lines.some((line) => line.msg === 'obtaining certificate failed'),
    5_000,
    'log',
  );
  const failure = lines.find((line) => line.msg === 'obtaining certificate failed')!;
  assert.deepEqual(failure.names, SITES.production);
  assert.equal(failure.directory, issuer.directoryUrl);
  assert.equal(failure.problemType, CONNECTION_PROBLEM);
  assert.equal(failure.level, 40);
  assert.ok(failure.nextAttemptAt);
});

test('manual renewal failure rejects with the CA problem', async (t) => {
  const clock = new FakeClock();
  const issuer = new FakeIssuer(clock);
  const manager = await startManager(await acmeConfig(SITES), issuer, clock);
  t.after(() => manager.stop());
  await waitFor(() => manager.status()[0]?.state === 'valid');
  await settle();

  issuer.failures.push(connectionError());
  await assert.rejects(manager.renewNow('example.test'), {
    code: 'EDGE_CERTIFICATE_ORDER_FAILED',
    status: 502,
    message: /Connection refused/,
  });
  assert.equal(manager.status()[0]?.state, 'valid');
});
