import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import {
  delay,
  httpsRequest,
  listenUpstream,
  oneSite,
  startTestEdge,
  waitUntil,
  type TestResponse,
  type TestUpstream,
} from '../support/upstreams.ts';

/** An upstream whose responses take `delayMs`, with a WebSocket echo on every path. */
async function startSlowUpstream(delayMs: number): Promise<TestUpstream> {
  const server = http.createServer((_req, res) => {
    setTimeout(() => res.end('finished'), delayMs).unref();
  });
  const wss = new WebSocketServer({ server });
  wss.on('connection', (socket) => socket.on('message', (data) => socket.send(data)));
  return listenUpstream(server);
}

function openClient(port: number): Promise<WebSocket> {
  const options: WebSocket.ClientOptions & { servername: string } = {
    headers: { host: 'app.example.test' },
    servername: 'app.example.test',
    rejectUnauthorized: false,
  };
  const socket = new WebSocket(`wss://127.0.0.1:${port}/ws/`, options);
  return new Promise((resolve, reject) => {
    socket.once('open', () => resolve(socket));
    socket.once('error', reject);
  });
}

function closeCode(socket: WebSocket): Promise<number> {
  return new Promise((resolve) => socket.once('close', (code) => resolve(code)));
}

describe('proxy graceful close', () => {
  it('finishes in-flight requests and closes WebSockets with 1001', async () => {
    const upstream = await startSlowUpstream(300);
    const edge = await startTestEdge(oneSite(upstream.origin));
    try {
      const client = await openClient(edge.httpsPort);
      const code = closeCode(client);
      const pending = httpsRequest(edge.httpsPort, { path: '/slow' });
      await waitUntil(
        () => upstream.server.listenerCount('request') > 0 && edge.servers.https.listening,
        500,
      );
      await delay(50);

      await edge.servers.close(5_000);
      const response = await pending;
      assert.equal(response.status, 200);
      assert.equal(response.body, 'finished');
      assert.equal(response.headers.connection, 'close', 'a response during shutdown closes');
      assert.equal(await code, 1001);
      assert.equal(edge.servers.https.listening, false);
    } finally {
      await upstream.close();
    }
  });

  it('closes the connection of an upload answered during shutdown', async () => {
    const upstream = await startSlowUpstream(300);
    const edge = await startTestEdge(oneSite(upstream.origin));
    try {
      const pending = httpsRequest(edge.httpsPort, { path: '/slow', method: 'POST', body: 'x' });
      await waitUntil(
        () => [...edge.context.targets.entries()].some((slot) => (slot.current?.inflight ?? 0) > 0),
        2_000,
      );

      await edge.servers.close(5_000);
      const response = await pending;
      assert.equal(response.status, 200);
      assert.equal(response.headers.connection, 'close');
    } finally {
      await upstream.close();
    }
  });

  it('closes requests still open when the grace period ends', async () => {
    const upstream = await startSlowUpstream(60_000);
    const edge = await startTestEdge(oneSite(upstream.origin));
    try {
      const pending = httpsRequest(edge.httpsPort, { path: '/slow' }).catch(
        (error: Error) => error,
      );
      await delay(100);
      const started = Date.now();
      await edge.servers.close(300);
      assert.ok(Date.now() - started < 5_000);
      assert.ok((await pending) instanceof Error);
      assert.ok(edge.logs.some((line) => line.msg === 'shutdown grace ended with requests open'));
    } finally {
      await upstream.close();
    }
  });
});

/** Runs `src/main.ts` as its own process, as the container does. */
function runEdge(args: string[], env: Record<string, string> = {}): ChildProcessWithoutNullStreams {
  const childEnv: NodeJS.ProcessEnv = { ...process.env };
  delete childEnv.EDGE_CONFIG;
  Object.assign(childEnv, env);
  return spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], { env: childEnv });
}

function output(child: ChildProcessWithoutNullStreams): {
  stdout: () => string;
  stderr: () => string;
  exit: Promise<number>;
} {
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exit = new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? -1)));
  return { stdout: () => stdout, stderr: () => stderr, exit };
}

describe('edge process', () => {
  let dir: string;
  let upstream: TestUpstream;

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'edge-main-'));
    upstream = await startSlowUpstream(500);
  });

  after(async () => {
    await upstream.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('ignores SIGHUP, stops on SIGTERM after in-flight requests, exits 0', async () => {
    const config = path.join(dir, 'edge.yml');
    writeFileSync(
      config,
      [
        'listen: { address: 127.0.0.1, httpPort: 0, httpsPort: 0 }',
        `certsDir: ${path.join(dir, 'certs')}`,
        `stateDir: ${path.join(dir, 'state')}`,
        'sites:',
        '  - name: prod',
        '    hosts: [app.example.test]',
        '    routes:',
        `      - { path: /, upstream: "${upstream.origin}" }`,
      ].join('\n'),
    );
    const child = runEdge(['--config', config]);
    const out = output(child);
    await waitUntil(() => out.stdout().includes('"edge started"'), 90_000, 'edge start');
    const listening = JSON.parse(
      out
        .stdout()
        .split('\n')
        .find((line) => line.includes('"listening"'))!,
    ) as { https: number };

    child.kill('SIGHUP');
    await waitUntil(() => out.stdout().includes('SIGHUP ignored'), 5_000, 'the SIGHUP line');
    const client = await openClient(listening.https);
    const code = closeCode(client);
    const pending: Promise<TestResponse> = httpsRequest(listening.https, { path: '/slow' });
    await delay(150);
    child.kill('SIGTERM');

    assert.equal((await pending).status, 200);
    assert.equal(await code, 1001);
    assert.equal(await out.exit, 0);
    assert.match(out.stdout(), /"msg":"stopping"/);
    assert.match(out.stdout(), /"msg":"edge stopped"/);
  });

  it('exits 1 listing every problem of an invalid config, without a stack trace', async () => {
    const config = path.join(dir, 'bad.yml');
    writeFileSync(
      config,
      [
        'listen: { httpPort: 70000 }',
        'sites:',
        '  - name: prod',
        '    hosts: [app.example.test]',
        '    routes:',
        '      - { path: api, upstream: "http://x:1" }',
      ].join('\n'),
    );
    const out = output(runEdge([], { EDGE_CONFIG: config }));
    assert.equal(await out.exit, 1);
    assert.match(out.stderr(), /invalid config .*bad\.yml: 2 problem/);
    assert.match(out.stderr(), /listen\.httpPort:/);
    assert.match(out.stderr(), /sites\[0\]\.routes\[0\]\.path: must start with \//);
    assert.doesNotMatch(out.stderr(), /\n\s+at /);
  });

  it('exits 1 with a clear message when the config file is missing', async () => {
    const out = output(runEdge(['--config', path.join(dir, 'missing.yml')]));
    assert.equal(await out.exit, 1);
    assert.match(out.stderr(), /reading config .*missing\.yml/);
  });
});
