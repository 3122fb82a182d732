import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { configSchema, type EdgeConfig } from '../../src/config/schema.ts';
import { startEdge, type RunningEdge } from '../../src/edge.ts';
import { silentLogger } from '../../src/log.ts';
import type { CertificateStatus } from '../../src/status.ts';
import { fetchPeerCertificate, waitFor } from '../support/acme-fakes.ts';
import {
  createPebbleTls,
  freeTcpPorts,
  startPebble,
  type Pebble,
  type PebbleTls,
} from '../support/pebble.ts';

const STAGING = ['staging.example.test', 'api.staging.example.test'];
const PRODUCTION = ['example.test', 'www.example.test'];
const CONNECTION_PROBLEM = 'urn:ietf:params:acme:error:connection';
// 127.0.0.2 is loopback too, but the edge listens on 127.0.0.1 only: validation is refused.
const UNREACHABLE_ADDRESS = '127.0.0.2';

interface AcmeSetup {
  pebble: Pebble;
  config: EdgeConfig;
  /** Pebble's root, the trust anchor of issued chains. */
  root: string;
}

async function setUp(
  sites: Record<string, string[]>,
  pebbleOptions: { validitySeconds?: number; tls?: PebbleTls } = {},
): Promise<AcmeSetup> {
  const [httpPort, httpsPort] = (await freeTcpPorts(2)) as [number, number];
  const pebble = await startPebble({ httpPort, ...pebbleOptions });
  const config = configSchema.parse({
    listen: { address: '127.0.0.1', httpPort, httpsPort },
    certsDir: await mkdtemp(join(tmpdir(), 'edge-acme-certs-')),
    // Never the real Docker socket: these sites need no Docker at all.
    docker: { socket: join(tmpdir(), 'edge-acme-no-docker.sock') },
    tls: {
      acme: {
        directory: pebble.directoryUrl,
        caBundle: pebble.caBundlePath,
        email: 'ops@example.test',
        termsOfServiceAgreed: true,
        renewCheckIntervalMs: 100,
        pollMinMs: 50,
        pollMaxMs: 500,
        retryScheduleMs: [500],
      },
    },
    sites: Object.entries(sites).map(([name, hosts]) => ({
      name,
      hosts,
      routes: [{ path: '/', upstream: 'http://127.0.0.1:9/' }],
    })),
  });
  return { pebble, config, root: await pebble.rootCertificate() };
}

function certificateOf(edge: RunningEdge, host: string): CertificateStatus | undefined {
  return edge.context.certificates.status().find((entry) => entry.names.includes(host));
}

async function waitValid(edge: RunningEdge, timeoutMs = 20_000): Promise<void> {
  const managed = () =>
    edge.context.certificates.status().filter((entry) => entry.site !== undefined);
  await waitFor(
    () => managed().every((entry) => entry.state === 'valid'),
    timeoutMs,
    'valid certificates',
  );
}

function httpGet(
  port: number,
  path: string,
  host: string,
): Promise<{ status: number; location?: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { host } }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, location: res.headers.location, body }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

test('edge issues site certificates through its port-80 listener', async (t) => {
  const { pebble, config, root } = await setUp({ staging: STAGING, production: PRODUCTION });
  t.after(() => pebble.stop());
  const edge = await startEdge(config, silentLogger);
  t.after(() => edge.stop());

  await waitValid(edge);

  const httpsPort = edge.context.config.listen.httpsPort;
  for (const host of [...STAGING, ...PRODUCTION]) {
    const peer = await fetchPeerCertificate(httpsPort, host, root);
    assert.equal(peer.serialNumber.toLowerCase(), certificateOf(edge, host)?.serial, host);
    assert.match(peer.subjectaltname ?? '', new RegExp(`DNS:${host.replace(/\./g, '\\.')}`));
  }
  assert.equal(pebble.orderCount(), 2);

  const redirect = await httpGet(config.listen.httpPort, '/some/page', 'www.example.test');
  assert.equal(redirect.status, 308);
  assert.equal(redirect.location, `https://www.example.test:${config.listen.httpsPort}/some/page`);
});

test('edge restarts with stored certificates place no order', async (t) => {
  const { pebble, config, root } = await setUp({ production: PRODUCTION });
  t.after(() => pebble.stop());

  let firstSerial: string | undefined;
  for (let start = 0; start < 7; start += 1) {
    const edge = await startEdge(config, silentLogger);
    try {
      await waitValid(edge);
      const peer = await fetchPeerCertificate(config.listen.httpsPort, 'example.test', root);
      firstSerial ??= peer.serialNumber;
      assert.equal(peer.serialNumber, firstSerial, `start ${start + 1}`);
    } finally {
      await edge.stop();
    }
  }

  assert.equal(pebble.orderCount(), 1);
});

test('edge serves a renewed certificate without restart', async (t) => {
  // 15-second certificates fall due for renewal 10 seconds after issuance.
  const { pebble, config, root } = await setUp({ production: PRODUCTION }, { validitySeconds: 15 });
  t.after(() => pebble.stop());
  const edge = await startEdge(config, silentLogger);
  t.after(() => edge.stop());
  await waitValid(edge);
  const first = await fetchPeerCertificate(config.listen.httpsPort, 'www.example.test', root);

  let renewed = first;
  await waitFor(
    () => certificateOf(edge, 'example.test')?.serial !== first.serialNumber.toLowerCase(),
    20_000,
    'renewal',
  );
  renewed = await fetchPeerCertificate(config.listen.httpsPort, 'www.example.test', root);

  assert.notEqual(renewed.serialNumber, first.serialNumber);
  assert.ok(Date.parse(renewed.valid_to) > Date.parse(first.valid_to));
  assert.equal(
    certificateOf(edge, 'example.test')?.notAfter,
    new Date(renewed.valid_to).toISOString(),
  );
  assert.equal(pebble.orderCount(), 2);
});

test('edge registers again when the CA forgot its account', async (t) => {
  // One HTTPS certificate for both Pebble processes, so the CA bundle in the config stays valid.
  const tls = await createPebbleTls(await mkdtemp(join(tmpdir(), 'edge-pebble-tls-')));
  const { pebble, config } = await setUp({ production: PRODUCTION }, { validitySeconds: 15, tls });
  let current = pebble;
  t.after(() => current.stop());
  const edge = await startEdge(config, silentLogger);
  t.after(() => edge.stop());
  await waitValid(edge);
  const firstSerial = certificateOf(edge, 'example.test')?.serial;

  // A new Pebble on the same port has the same directory URL and no accounts.
  const port = Number(new URL(pebble.directoryUrl).port);
  await pebble.stop();
  current = await startPebble({
    httpPort: config.listen.httpPort,
    validitySeconds: 15,
    tls,
    listenPort: port,
  });
  await waitFor(
    () => certificateOf(edge, 'example.test')?.serial !== firstSerial,
    30_000,
    'renewal from the new CA',
  );

  assert.equal(current.directoryUrl, pebble.directoryUrl);
  assert.equal(certificateOf(edge, 'example.test')?.state, 'valid');
  assert.equal(current.orderCount(), 1);
});

test('edge retries failed issuance and keeps the old certificate', async (t) => {
  const { pebble, config, root } = await setUp({ production: PRODUCTION }, { validitySeconds: 20 });
  t.after(() => pebble.stop());
  const edge = await startEdge(config, silentLogger);
  t.after(() => edge.stop());
  await waitValid(edge);
  const first = await fetchPeerCertificate(config.listen.httpsPort, 'example.test', root);

  // Renewal falls due after about 13 s; until then validation of www is refused.
  await pebble.setAddress('www.example.test', UNREACHABLE_ADDRESS);
  await waitFor(
    () => certificateOf(edge, 'example.test')?.lastError !== undefined,
    25_000,
    'failed renewal',
  );

  const failed = certificateOf(edge, 'example.test')!;
  assert.equal(failed.lastError?.type, CONNECTION_PROBLEM);
  assert.ok(failed.nextAttemptAt);
  assert.equal(failed.serial, first.serialNumber.toLowerCase());
  const during = await fetchPeerCertificate(config.listen.httpsPort, 'example.test', root);
  assert.equal(during.serialNumber, first.serialNumber);

  await pebble.clearAddress('www.example.test');
  await waitFor(
    () => certificateOf(edge, 'example.test')?.serial !== failed.serial,
    10_000,
    'retry',
  );
  const after = await fetchPeerCertificate(config.listen.httpsPort, 'example.test', root);
  assert.notEqual(after.serialNumber, first.serialNumber);
  assert.equal(certificateOf(edge, 'example.test')?.lastError, undefined);
});

test('edge serves the fallback while first issuance fails', async (t) => {
  const { pebble, config, root } = await setUp({ production: PRODUCTION });
  t.after(() => pebble.stop());
  await pebble.setAddress('example.test', UNREACHABLE_ADDRESS);
  const edge = await startEdge(config, silentLogger);
  t.after(() => edge.stop());

  await waitFor(() => certificateOf(edge, 'example.test')?.state === 'failed', 20_000, 'failure');
  assert.equal(certificateOf(edge, 'example.test')?.lastError?.type, CONNECTION_PROBLEM);
  await assert.rejects(fetchPeerCertificate(config.listen.httpsPort, 'example.test', root));
  const fallback = await fetchPeerCertificate(config.listen.httpsPort, 'example.test');
  assert.match(fallback.subjectaltname ?? '', /DNS:example\.test/);

  await pebble.clearAddress('example.test');
  await waitValid(edge);
  const issued = await fetchPeerCertificate(config.listen.httpsPort, 'example.test', root);
  assert.equal(issued.serialNumber.toLowerCase(), certificateOf(edge, 'example.test')?.serial);
  assert.ok(pebble.orderCount() >= 2);
});

test('edge places no order for unknown, IP or missing SNI', async (t) => {
  const { pebble, config, root } = await setUp({ production: PRODUCTION });
  t.after(() => pebble.stop());
  const edge = await startEdge(config, silentLogger);
  t.after(() => edge.stop());
  await waitValid(edge);

  for (const servername of ['unknown.example.test', '127.0.0.1', undefined]) {
    await assert.rejects(
      fetchPeerCertificate(config.listen.httpsPort, servername, root),
      String(servername),
    );
    const served = await fetchPeerCertificate(config.listen.httpsPort, servername);
    assert.notEqual(served.serialNumber.toLowerCase(), certificateOf(edge, 'example.test')?.serial);
  }
  await new Promise((resolve) => setTimeout(resolve, 300));

  assert.equal(pebble.orderCount(), 1);
});
