import assert from 'node:assert/strict';
import { test } from 'node:test';
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

const SITES = {
  staging: ['staging.example.test', 'api.staging.example.test'],
  production: ['example.test', 'www.example.test'],
};

test('manager orders one certificate per site with all its hosts', async (t) => {
  const clock = new FakeClock();
  const issuer = new FakeIssuer(clock);
  const manager = await startManager(await acmeConfig(SITES), issuer, clock);
  t.after(() => manager.stop());

  await waitFor(
    () => manager.status().every((entry) => entry.state === 'valid'),
    5_000,
    'issuance',
  );

  const ordered = issuer.orders.map((order) => order.names.join(','));
  assert.deepEqual(ordered.sort(), [
    'example.test,www.example.test',
    'staging.example.test,api.staging.example.test',
  ]);
  const staging = manager.status().find((entry) => entry.site === 'staging');
  assert.ok(staging?.serial);
  assert.ok(staging.renewAt);
});

test('SNI serves the issued certificate for every host of the site', async (t) => {
  const clock = new FakeClock();
  const issuer = new FakeIssuer(clock);
  const manager = await startManager(await acmeConfig(SITES), issuer, clock);
  const server = await startTlsServer(manager);
  t.after(async () => {
    await server.close();
    await manager.stop();
  });
  await waitFor(() => manager.status().every((entry) => entry.state === 'valid'));

  for (const host of [...SITES.staging, ...SITES.production]) {
    const peer = await fetchPeerCertificate(server.port, host.toUpperCase());
    const expected = manager.status().find((entry) => entry.names.includes(host));
    assert.equal(peer.serialNumber.toLowerCase(), expected?.serial, host);
  }
});

test('pending names get the self-signed fallback without waiting', async (t) => {
  const clock = new FakeClock();
  const issuer = new FakeIssuer(clock);
  let release!: () => void;
  issuer.gate = new Promise((resolve) => (release = resolve));
  const manager = await startManager(await acmeConfig(SITES), issuer, clock);
  const server = await startTlsServer(manager);
  t.after(async () => {
    release();
    await server.close();
    await manager.stop();
  });
  await waitFor(() => issuer.orders.length === 2, 5_000, 'orders');

  const peer = await fetchPeerCertificate(server.port, 'staging.example.test');
  const fallbackSerial = peer.serialNumber;
  assert.equal(manager.status().find((entry) => entry.site === 'staging')?.state, 'pending');
  assert.match(peer.subjectaltname ?? '', /DNS:staging\.example\.test/);

  release();
  await waitFor(() => manager.status().every((entry) => entry.state === 'valid'));
  const issued = await fetchPeerCertificate(server.port, 'staging.example.test');
  assert.notEqual(issued.serialNumber, fallbackSerial);
});

test('unknown, IP address and missing SNI place no order', async (t) => {
  const clock = new FakeClock();
  const issuer = new FakeIssuer(clock);
  const manager = await startManager(await acmeConfig(SITES), issuer, clock);
  const server = await startTlsServer(manager);
  t.after(async () => {
    await server.close();
    await manager.stop();
  });
  await waitFor(() => manager.status().every((entry) => entry.state === 'valid'));
  const ordersBefore = issuer.orders.length;

  const unknown = await fetchPeerCertificate(server.port, 'unknown.example.test');
  const ipAddress = await fetchPeerCertificate(server.port, '127.0.0.1');
  const noName = await fetchPeerCertificate(server.port, undefined);
  await new Promise((resolve) => setTimeout(resolve, 100));

  assert.equal(issuer.orders.length, ordersBefore);
  const fallbackSerial = noName.serialNumber;
  assert.equal(unknown.serialNumber, fallbackSerial);
  assert.equal(ipAddress.serialNumber, fallbackSerial);
  const served = manager.status().map((entry) => entry.serial?.toUpperCase());
  assert.ok(!served.includes(fallbackSerial));
});

test('restarts with stored certificates place no new order', async () => {
  const clock = new FakeClock();
  const issuer = new FakeIssuer(clock);
  const config = await acmeConfig(SITES);

  for (let start = 0; start < 7; start += 1) {
    const manager = await startManager(config, issuer, clock);
    await waitFor(() => manager.status().every((entry) => entry.state === 'valid'));
    await new Promise((resolve) => setTimeout(resolve, 60));
    await manager.stop();
    clock.advance(DAY_MS);
  }

  assert.equal(issuer.orders.length, 2);
});

test('burst of renew requests places a single order', async (t) => {
  const clock = new FakeClock();
  const issuer = new FakeIssuer(clock);
  const manager = await startManager(await acmeConfig(SITES), issuer, clock);
  t.after(() => manager.stop());
  await waitFor(() => manager.status().every((entry) => entry.state === 'valid'));
  // Let the first orders finish saving, so the requests below cannot join them.
  await new Promise((resolve) => setTimeout(resolve, 100));
  const ordersBefore = issuer.orders.length;

  const serialBefore = manager.status().find((entry) => entry.site === 'staging')?.serial;

  await Promise.all(
    Array.from({ length: 20 }, (_, index) =>
      manager.renewNow(index % 2 === 0 ? 'staging.example.test' : 'API.staging.example.test'),
    ),
  );

  assert.equal(issuer.orders.length, ordersBefore + 1);
  const serialAfter = manager.status().find((entry) => entry.site === 'staging')?.serial;
  assert.notEqual(serialAfter, serialBefore);
});

test('renewNow rejects names without an ACME certificate', async (t) => {
  const clock = new FakeClock();
  const manager = await startManager(await acmeConfig(SITES), new FakeIssuer(clock), clock);
  t.after(() => manager.stop());

  await assert.rejects(manager.renewNow('unknown.example.test'), {
    code: 'EDGE_CERTIFICATE_UNKNOWN',
    status: 404,
  });
});

test('renewal at one third of lifetime is served without restart', async (t) => {
  const clock = new FakeClock();
  const issuer = new FakeIssuer(clock, 45 * DAY_MS);
  const manager = await startManager(await acmeConfig(SITES), issuer, clock);
  const server = await startTlsServer(manager);
  t.after(async () => {
    await server.close();
    await manager.stop();
  });
  await waitFor(() => manager.status().every((entry) => entry.state === 'valid'));
  const before = await fetchPeerCertificate(server.port, 'example.test');

  clock.advance(29 * DAY_MS);
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(issuer.orders.length, 2, 'no renewal with more than a third left');

  clock.advance(2 * DAY_MS);
  await waitFor(() => issuer.orders.length === 4, 5_000, 'renewal orders');
  const production = () => manager.status().find((entry) => entry.site === 'production');
  await waitFor(
    () => production()?.serial !== before.serialNumber.toLowerCase(),
    5_000,
    'new serial',
  );

  const after = await fetchPeerCertificate(server.port, 'example.test');
  assert.notEqual(after.serialNumber, before.serialNumber);
  assert.equal(production()?.serial, after.serialNumber.toLowerCase());
  assert.equal(production()?.notAfter, new Date(after.valid_to).toISOString());
});

test('wildcard hosts stay on the fallback and are not ordered', async (t) => {
  const clock = new FakeClock();
  const issuer = new FakeIssuer(clock);
  const config = await acmeConfig({ apps: ['apps.example.test', '*.apps.example.test'] });
  const manager = await startManager(config, issuer, clock);
  t.after(() => manager.stop());
  await waitFor(() => issuer.orders.length === 1);

  assert.deepEqual(issuer.orders[0]?.names, ['apps.example.test']);
  const wildcard = manager.status().find((entry) => entry.names.includes('*.apps.example.test'));
  assert.equal(wildcard?.state, 'self-signed');
});

test('expired stored certificate is replaced at start', async (t) => {
  const clock = new FakeClock();
  const issuer = new FakeIssuer(clock);
  const config = await acmeConfig({ production: SITES.production });
  const first = await startManager(config, issuer, clock);
  await waitFor(() => first.status()[0]?.state === 'valid');
  await first.stop();
  const expiredSerial = first.status()[0]?.serial;

  clock.advance(91 * DAY_MS);
  const manager = await startManager(config, issuer, clock);
  t.after(() => manager.stop());

  await waitFor(() => issuer.orders.length === 2, 5_000, 'replacement order');
  await waitFor(() => manager.status()[0]?.state === 'valid', 5_000, 'valid again');
  assert.notEqual(manager.status()[0]?.serial, expiredSerial);
});
