import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  connectRaw,
  rawExchange,
  startTestEdge,
  startUpstream,
  waitUntil,
  type TestEdge,
  type TestUpstream,
} from '../support/upstreams.ts';

/** Larger than what loopback sockets buffer, so a client that stops reading stalls the edge. */
const LARGE_BYTES = 48 * 1024 * 1024;
const SEND_MS = 300;

/** A client connection that sends one request and never reads the answer. */
function stopReading(port: number, secure: boolean, request: string): net.Socket {
  const socket = connectRaw(port, secure ? { servername: 'app.example.test' } : undefined);
  socket.on('error', () => {});
  socket.write(request);
  socket.pause();
  return socket;
}

describe('send timeout', () => {
  let edge: TestEdge;
  let upstream: TestUpstream;
  let staticDir: string;

  before(async () => {
    staticDir = mkdtempSync(path.join(tmpdir(), 'edge-send-'));
    writeFileSync(path.join(staticDir, 'large.bin'), Buffer.alloc(LARGE_BYTES, 'l'));
    writeFileSync(path.join(staticDir, 'small.txt'), 'small');
    upstream = await startUpstream((_req, res) => res.end(Buffer.alloc(LARGE_BYTES, 'u')));
    edge = await startTestEdge({
      timeouts: { sendMs: SEND_MS },
      sites: [
        {
          name: 'prod',
          hosts: ['app.example.test'],
          http: 'serve',
          routes: [
            { path: '/api/', upstream: upstream.origin },
            { path: '/', static: staticDir },
          ],
        },
      ],
    });
  });

  after(async () => {
    await edge.stop();
    await upstream.close();
    rmSync(staticDir, { recursive: true, force: true });
  });

  const stalls = () =>
    edge.logs.filter((line) => line.msg === 'client stopped reading; connection closed');

  for (const [listener, secure] of [
    ['plain HTTP', false],
    ['HTTPS', true],
  ] as const) {
    for (const [kind, url] of [
      ['a static file', '/large.bin'],
      ['a proxied response', '/api/large'],
    ] as const) {
      it(`closes a client that stops reading ${kind} (${listener})`, async () => {
        const before = stalls().length;
        const port = secure ? edge.httpsPort : edge.httpPort;
        const socket = stopReading(
          port,
          secure,
          `GET ${url} HTTP/1.1\r\nHost: app.example.test\r\n\r\n`,
        );

        await waitUntil(() => stalls().length > before, 10_000);
        socket.destroy();
        assert.equal(stalls().length, before + 1);
      });
    }
  }

  it('keeps a client that reads', async () => {
    const before = stalls().length;
    const text = await rawExchange(
      edge.httpPort,
      'GET /small.txt HTTP/1.1\r\nHost: app.example.test\r\nConnection: close\r\n\r\n',
    );
    await new Promise((resolve) => setTimeout(resolve, SEND_MS * 3));

    assert.match(text, /^HTTP\/1\.1 200 /);
    assert.ok(text.endsWith('small'));
    assert.equal(stalls().length, before);
  });
});
