import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import { loadAddon } from '../../src/native.ts';
import type { CertificateManager } from '../../src/tls/index.ts';
import { createSelfSignedCertificate, type PemKeyPair } from '../../src/tls/self-signed.ts';
import {
  OPENSSL_DEFAULT_SESSION_TICKETS,
  SESSION_TICKETS,
  SessionTickets,
} from '../../src/tls/session-tickets.ts';
import { startTestEdge } from '../support/upstreams.ts';

interface Handshake {
  /** Session tickets the server sent, in order. */
  tickets: Buffer[];
  reused: boolean;
}

/**
 * Connects over TLS 1.3, sends `request` and reads until the server closes. Node's client emits
 * 'session' once for each NewSessionTicket the server sends.
 */
function handshake(
  port: number,
  request: string,
  options: { servername?: string; session?: Buffer } = {},
): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    const tickets: Buffer[] = [];
    let reused = false;
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      servername: options.servername,
      session: options.session,
      minVersion: 'TLSv1.3',
      rejectUnauthorized: false,
    });
    socket.on('session', (ticket: Buffer) => tickets.push(ticket));
    socket.on('secureConnect', () => {
      reused = socket.isSessionReused();
      socket.write(request);
    });
    socket.on('data', () => undefined);
    socket.on('error', reject);
    socket.on('close', () => resolve({ tickets, reused }));
  });
}

/** Starts a bare TLS server that replies "ok" to the first bytes of each connection, then closes it. */
async function startTlsServer(pem: PemKeyPair): Promise<{ server: tls.Server; port: number }> {
  const server = tls.createServer({ cert: pem.cert, key: pem.key }, (socket) =>
    socket.once('data', () => socket.end('ok')),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as { port: number }).port };
}

function close(server: tls.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

describe('TLS 1.3 session tickets', () => {
  let workDir: string;
  let addon: string;
  let pem: PemKeyPair;

  before(async () => {
    workDir = mkdtempSync(join(tmpdir(), 'edge-tickets-'));
    const build = spawnSync('bash', ['scripts/build-native.sh', join(workDir, 'build')], {
      encoding: 'utf8',
    });
    assert.equal(build.status, 0, `scripts/build-native.sh failed: ${build.stderr}`);
    addon = join(workDir, 'build', 'session-tickets.node');
    pem = await createSelfSignedCertificate(['tickets.test']);
  });

  after(() => rmSync(workDir, { recursive: true, force: true }));

  it('one resumable ticket per handshake', async () => {
    const tickets = new SessionTickets(addon);
    assert.equal(tickets.reason, undefined);
    assert.equal(tickets.count, SESSION_TICKETS);
    const { server, port } = await startTlsServer(pem);
    try {
      const unchanged = await handshake(port, 'x');
      tickets.applyTo(server);
      const first = await handshake(port, 'x');
      const resumed = await handshake(port, 'x', { session: first.tickets[0] });

      assert.equal(unchanged.tickets.length, OPENSSL_DEFAULT_SESSION_TICKETS);
      assert.equal(first.tickets.length, SESSION_TICKETS);
      assert.equal(first.reused, false);
      assert.equal(resumed.reused, true);
    } finally {
      await close(server);
    }
  });

  it('SNI and replaced server contexts', async () => {
    const tickets = new SessionTickets(addon);
    const { server, port } = await startTlsServer(pem);
    try {
      tickets.applyTo(server);
      const withName = await handshake(port, 'x', { servername: 'tickets.test' });
      server.setSecureContext({ cert: pem.cert, key: pem.key });
      const replaced = await handshake(port, 'x');
      tickets.applyTo(server);
      const again = await handshake(port, 'x');

      assert.equal(withName.tickets.length, SESSION_TICKETS);
      assert.equal(replaced.tickets.length, OPENSSL_DEFAULT_SESSION_TICKETS);
      assert.equal(again.tickets.length, SESSION_TICKETS);
    } finally {
      await close(server);
    }
  });

  it('missing addon keeps two tickets', async () => {
    const tickets = new SessionTickets(join(workDir, 'absent.node'));
    const { server, port } = await startTlsServer(pem);
    try {
      tickets.applyTo(server);
      const result = await handshake(port, 'x');

      assert.equal(tickets.count, OPENSSL_DEFAULT_SESSION_TICKETS);
      assert.match(tickets.reason ?? '', /absent\.node not found/);
      assert.equal(result.tickets.length, OPENSSL_DEFAULT_SESSION_TICKETS);
    } finally {
      await close(server);
    }
  });

  it('addon rejects invalid arguments', () => {
    const loaded = loadAddon<(external: unknown, count: number) => number>(
      addon,
      'setSessionTickets',
    );
    assert.ok(loaded.fn, `addon did not load: ${loaded.reason}`);
    const context = tls.createSecureContext({ cert: pem.cert, key: pem.key });
    const external = (context.context as { _external: unknown })._external;

    for (const args of [[{}, 1], [external, -1], [external, 17], [external, 1.5], [external]]) {
      assert.throws(() => loaded.fn(...(args as [unknown, number])), TypeError);
    }
    assert.equal(loaded.fn(external, 3), OPENSSL_DEFAULT_SESSION_TICKETS);
    assert.equal(loaded.fn(external, 1), 3, 'returns the count set before');
  });

  it('edge listener after certificate change', async () => {
    let current = pem;
    const replacement = await createSelfSignedCertificate(['other.test']);
    const certificates: CertificateManager = {
      async start() {},
      async stop() {},
      sniCallback: (_name, callback) => callback(null, tls.createSecureContext(current)),
      defaultSecureContext: () => tls.createSecureContext(current),
      defaultCertificate: () => current,
      challengeResponse: () => undefined,
      status: () => [],
      renewNow: () => Promise.reject(new Error('no ACME here')),
    };
    const edge = await startTestEdge(
      {
        sites: [
          { name: 'site', hosts: ['tickets.test'], routes: [{ path: '/', static: workDir }] },
        ],
      },
      { certificates, sessionTickets: new SessionTickets(addon) },
    );
    try {
      const request = 'GET / HTTP/1.1\r\nHost: tickets.test\r\nConnection: close\r\n\r\n';
      const first = await handshake(edge.httpsPort, request, { servername: 'tickets.test' });
      current = replacement;
      const afterChange = await handshake(edge.httpsPort, request);

      assert.equal(first.tickets.length, SESSION_TICKETS);
      assert.equal(afterChange.tickets.length, SESSION_TICKETS);
    } finally {
      await edge.stop();
    }
  });
});
