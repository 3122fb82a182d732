import assert from 'node:assert/strict';
import { test } from 'node:test';
import { silentLogger } from '../../src/log.ts';
import { readCertificateInfo, renewalCertificateId } from '../../src/tls/certificate.ts';
import { createCertificateManager } from '../../src/tls/index.ts';
import {
  acmeConfig,
  DAY_MS,
  FakeClock,
  FakeIssuer,
  makeCertificate,
  waitFor,
} from '../support/acme-fakes.ts';

const SITES = { production: ['example.test'] };

test('ARI certificate id matches the RFC 9773 example', () => {
  const id = renewalCertificateId({
    names: [],
    serial: '87654321',
    notBefore: new Date(),
    notAfter: new Date(),
    issuer: '',
    authorityKeyId: '69885b6b87464041e1b37b847ba0ae2cde01c8d4',
  });

  assert.equal(id, 'aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE');
});

test('ARI certificate id is read from a certificate', async () => {
  const pem = await makeCertificate(['example.test'], Date.now(), Date.now() + DAY_MS);
  const info = readCertificateInfo(pem.cert);

  const [keyId, serial] = renewalCertificateId(info)!.split('.');
  assert.equal(keyId, 'aYhba4dGQEHhs3uEe6CuLN4ByNQ');
  assert.equal(Buffer.from(serial!, 'base64url').toString('hex'), info.serial);
});

test('ARI window in the past renews early and names the replaced certificate', async (t) => {
  const clock = new FakeClock();
  const issuer = new FakeIssuer(clock, 90 * DAY_MS);
  const manager = await createCertificateManager({
    config: await acmeConfig(SITES),
    logger: silentLogger,
    issuer,
    now: clock.now,
  });
  await manager.start();
  t.after(() => manager.stop());
  await waitFor(() => manager.status()[0]?.state === 'valid');
  await waitFor(() => issuer.renewalInfoRequests.length === 1, 5_000, 'ARI request');
  const first = manager.status()[0]!;
  const expectedId = issuer.renewalInfoRequests[0];

  // As after a revocation, the window moves into the past.
  issuer.renewalWindow = {
    start: new Date(clock.now() - 2 * DAY_MS),
    end: new Date(clock.now() - DAY_MS),
    retryAfterMs: 6 * 60 * 60 * 1000,
  };
  clock.advance(6 * 60 * 60 * 1000 + 1);

  await waitFor(() => issuer.orders.length === 2, 5_000, 'early renewal');
  assert.equal(issuer.orders[1]?.replaces, expectedId);
  await waitFor(() => manager.status()[0]?.serial !== first.serial, 5_000, 'new serial');
});

test('ARI window in the future sets the renewal time inside it', async (t) => {
  const clock = new FakeClock();
  const issuer = new FakeIssuer(clock, 90 * DAY_MS);
  issuer.renewalWindow = {
    start: new Date(clock.now() + 10 * DAY_MS),
    end: new Date(clock.now() + 12 * DAY_MS),
  };
  const manager = await createCertificateManager({
    config: await acmeConfig(SITES),
    logger: silentLogger,
    issuer,
    now: clock.now,
    random: () => 0.5,
  });
  await manager.start();
  t.after(() => manager.stop());

  const expected = new Date(clock.now() + 11 * DAY_MS).toISOString();
  await waitFor(() => manager.status()[0]?.renewAt === expected, 5_000, 'renewAt from ARI');

  clock.advance(11 * DAY_MS - 60_000);
  await new Promise((resolve) => setTimeout(resolve, 80));
  assert.equal(issuer.orders.length, 1, 'no renewal before the picked time');

  clock.advance(120_000);
  await waitFor(() => issuer.orders.length === 2, 5_000, 'renewal at the picked time');
});
