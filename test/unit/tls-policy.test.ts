import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import tls, { type SecureVersion } from 'node:tls';
import { TLS_SERVER_OPTIONS } from '../../src/tls/policy.ts';
import { createSelfSignedCertificate } from '../../src/tls/self-signed.ts';

// OpenSSL 3 rejects TLS 1.0 and 1.1 at its default security level, even as a client. Level 0
// lets the test client offer them, so only the server policy can reject them.
const LEGACY_CLIENT_CIPHERS = 'DEFAULT:@SECLEVEL=0';

async function startServer(options: tls.TlsOptions): Promise<{ port: number; close(): void }> {
  const pem = await createSelfSignedCertificate(['example.test']);
  const server = tls.createServer({ ...options, ...pem }, (socket) => socket.end());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as AddressInfo).port, close: () => server.close() };
}

function handshake(
  port: number,
  version: SecureVersion,
): Promise<{ protocol: string | null; alpn: string | false | null }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      servername: 'example.test',
      rejectUnauthorized: false,
      minVersion: version,
      maxVersion: version,
      ciphers: LEGACY_CLIENT_CIPHERS,
      ALPNProtocols: ['h2', 'http/1.1'],
    });
    socket.once('secureConnect', () => {
      resolve({ protocol: socket.getProtocol(), alpn: socket.alpnProtocol });
      socket.destroy();
    });
    socket.once('error', reject);
  });
}

test('TLS policy accepts TLS 1.2 and 1.3 with HTTP/1.1 ALPN', async (t) => {
  const server = await startServer(TLS_SERVER_OPTIONS);
  t.after(() => server.close());

  const v12 = await handshake(server.port, 'TLSv1.2');
  const v13 = await handshake(server.port, 'TLSv1.3');

  assert.equal(v12.protocol, 'TLSv1.2');
  assert.equal(v13.protocol, 'TLSv1.3');
  assert.equal(v12.alpn, 'http/1.1');
  assert.equal(v13.alpn, 'http/1.1');
});

test('TLS policy refuses TLS 1.0 and 1.1', async (t) => {
  const server = await startServer(TLS_SERVER_OPTIONS);
  t.after(() => server.close());

  for (const version of ['TLSv1', 'TLSv1.1'] as const) {
    await assert.rejects(handshake(server.port, version), /version|protocol/i, version);
  }
});

test('legacy test client does reach a permissive server', async (t) => {
  // Control for the refusal test: the same client completes TLS 1.0 and 1.1 where allowed.
  const server = await startServer({ minVersion: 'TLSv1', ciphers: LEGACY_CLIENT_CIPHERS });
  t.after(() => server.close());

  assert.equal((await handshake(server.port, 'TLSv1')).protocol, 'TLSv1');
  assert.equal((await handshake(server.port, 'TLSv1.1')).protocol, 'TLSv1.1');
});

test('TLS policy offers only forward-secret AEAD suites on TLS 1.2', () => {
  const suites = String(TLS_SERVER_OPTIONS.ciphers).split(':');
  const tls12 = suites.filter((suite) => !suite.startsWith('TLS_'));

  assert.ok(tls12.length > 0);
  for (const suite of tls12) {
    assert.match(suite, /^ECDHE-/, suite);
    assert.match(suite, /GCM|CHACHA20-POLY1305/, suite);
  }
});
