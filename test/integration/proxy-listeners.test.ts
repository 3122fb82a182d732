import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import tls, { createSecureContext, type PeerCertificate } from 'node:tls';
import type { CertificateManager } from '../../src/tls/index.ts';
import { createSelfSignedCertificate, type PemKeyPair } from '../../src/tls/self-signed.ts';
import {
  connectRaw,
  delay,
  httpsRequest,
  oneSite,
  rawExchange,
  startTestEdge,
  startUpstream,
  statusOf,
  waitUntil,
  type TestEdge,
  type TestUpstream,
} from '../support/upstreams.ts';

/** Certificate manager whose default certificate the test can replace. */
class SwitchableCertificates implements CertificateManager {
  constructor(
    public site: PemKeyPair,
    public fallback: PemKeyPair,
  ) {}
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  sniCallback(
    _name: string,
    callback: (error: Error | null, context?: tls.SecureContext) => void,
  ): void {
    callback(null, createSecureContext(this.site));
  }
  defaultSecureContext(): tls.SecureContext {
    return createSecureContext(this.fallback);
  }
  defaultCertificate(): PemKeyPair {
    return this.fallback;
  }
  challengeResponse(): undefined {
    return undefined;
  }
  status(): [] {
    return [];
  }
  renewNow(): Promise<never> {
    return Promise.reject(new Error('not in this test'));
  }
}

function peerCertificate(port: number, servername?: string): Promise<PeerCertificate> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect(
      { host: '127.0.0.1', port, servername, rejectUnauthorized: false },
      () => {
        resolve(socket.getPeerCertificate());
        socket.destroy();
      },
    );
    socket.on('error', reject);
  });
}

describe('proxy TLS listener', () => {
  let edge: TestEdge;
  let upstream: TestUpstream;
  let certificates: SwitchableCertificates;

  before(async () => {
    upstream = await startUpstream();
    certificates = new SwitchableCertificates(
      await createSelfSignedCertificate(['app.example.test']),
      await createSelfSignedCertificate(['fallback-one.invalid']),
    );
    edge = await startTestEdge(oneSite(upstream.origin), { certificates });
  });

  after(async () => {
    await edge.stop();
    await upstream.close();
  });

  it('presents the site certificate for its server name', async () => {
    const certificate = await peerCertificate(edge.httpsPort, 'app.example.test');
    assert.equal(certificate.subject.CN, 'app.example.test');
  });

  it('presents the default certificate to clients without SNI, and follows its renewal', async () => {
    assert.equal((await peerCertificate(edge.httpsPort)).subject.CN, 'fallback-one.invalid');
    certificates.fallback = await createSelfSignedCertificate(['fallback-two.invalid']);
    assert.equal((await peerCertificate(edge.httpsPort)).subject.CN, 'fallback-two.invalid');
  });

  it('serves a client without SNI by its Host header', async () => {
    const raw = await rawExchange(
      edge.httpsPort,
      'GET / HTTP/1.1\r\nHost: app.example.test\r\nConnection: close\r\n\r\n',
      {
        tls: {},
      },
    );
    assert.equal(statusOf(raw), 200);
  });
});

describe('proxy client timeouts', () => {
  let edge: TestEdge;
  let upstream: TestUpstream;

  before(async () => {
    upstream = await startUpstream((_req, res, body) => res.end(`got ${body.length}`));
    edge = await startTestEdge({
      // headersMs is also the TLS handshake timeout, so it leaves room for a loaded CI machine.
      timeouts: { headersMs: 1_000, requestMs: 0, keepAliveMs: 300 },
      sites: [
        {
          name: 'prod',
          hosts: ['app.example.test'],
          routes: [{ path: '/', upstream: upstream.origin, timeouts: { upstreamMs: 500 } }],
        },
      ],
    });
  });

  after(async () => {
    await edge.stop();
    await upstream.close();
  });

  it('answers 408 when the request head does not arrive within headersMs', async () => {
    const socket = connectRaw(edge.httpsPort, { servername: 'app.example.test' });
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
    const closed = new Promise((resolve) => socket.on('close', resolve));
    socket.write('GET / HTTP/1.1\r\nHost: app.example.test\r\n');
    await closed;
    assert.equal(statusOf(text), 408);
  });

  it('closes an idle keep-alive connection after keepAliveMs', async () => {
    const socket = connectRaw(edge.httpsPort, { servername: 'app.example.test' });
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
    const closed = new Promise((resolve) => socket.on('close', resolve));
    socket.write('GET / HTTP/1.1\r\nHost: app.example.test\r\n\r\n');
    await waitUntil(() => text.includes('got 0'), 5_000, 'response');
    await closed;
    assert.equal(statusOf(text), 200);
  });

  it('accepts an upload that takes longer than every timeout when requestMs is 0', async () => {
    const socket = connectRaw(edge.httpsPort, { servername: 'app.example.test' });
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
    socket.write('POST /upload HTTP/1.1\r\nHost: app.example.test\r\nContent-Length: 8\r\n\r\n');
    for (let i = 0; i < 8; i++) {
      await delay(200);
      socket.write('x');
    }
    // 1.6 s in total: longer than headersMs, keepAliveMs and the route's upstreamMs.
    await waitUntil(() => text.includes('got 8'), 2_000, 'upload response');
    socket.destroy();
    assert.equal(statusOf(text), 200);
  });
});

describe('proxy request timeout', () => {
  it('cuts an upload that takes longer than requestMs', async () => {
    const upstream = await startUpstream((_req, res, body) => res.end(`got ${body.length}`));
    const edge = await startTestEdge({
      timeouts: { headersMs: 300, requestMs: 600 },
      ...oneSite(upstream.origin),
    });
    try {
      const socket = connectRaw(edge.httpsPort, { servername: 'app.example.test' });
      socket.on('error', () => {});
      let text = '';
      socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
      const closed = new Promise((resolve) => socket.on('close', resolve));
      socket.write(
        'POST /upload HTTP/1.1\r\nHost: app.example.test\r\nContent-Length: 100\r\n\r\n',
      );
      const trickle = setInterval(() => socket.writable && socket.write('x'), 100);
      await closed;
      clearInterval(trickle);
      assert.equal(statusOf(text), 408);
      assert.doesNotMatch(text, /got 100/);
      assert.equal(upstream.requests.length, 0);
      const next = await httpsRequest(edge.httpsPort);
      assert.equal(next.status, 200);
    } finally {
      await edge.stop();
      await upstream.close();
    }
  });
});
