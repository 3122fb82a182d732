import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { httpRequest, httpsRequest, waitUntil } from '../support/upstreams.ts';

describe('demo mode', () => {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    EDGE_DEMO_HTTP_PORT: '0',
    EDGE_DEMO_HTTPS_PORT: '0',
    // Empty, as the image runs the demo: `docker run -e EDGE_CONFIG= ...`.
    EDGE_CONFIG: '',
  };
  const child = spawn(process.execPath, ['bin/caliente-edge.js'], { env });
  let stdout = '';
  let stderr = '';
  let httpsPort = 0;
  let httpPort = 0;
  const exit = new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? -1)));
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));

  before(async () => {
    await waitUntil(
      () =>
        /production: https:\/\/app\.localhost:\d+\//.test(stderr) &&
        /"listening"[^\n]*\n/.test(stdout),
      90_000,
      `demo URLs and listening line (stderr: ${stderr})`,
    );
    httpsPort = Number(/staging: +https:\/\/staging\.localhost:(\d+)\//.exec(stderr)![1]);
    const listening = JSON.parse(
      stdout.split('\n').find((line) => line.includes('"listening"'))!,
    ) as { http: number };
    httpPort = listening.http;
  });

  after(async () => {
    child.kill('SIGTERM');
    assert.equal(await exit, 0);
  });

  it('logs the demo as its configuration', async () => {
    await waitUntil(() => /"msg":"edge started"[^\n]*\n/.test(stdout), 5_000, 'edge started line');
    const started = stdout.split('\n').find((line) => line.includes('"edge started"'));
    assert.ok(started, 'edge started line');
    assert.equal((JSON.parse(started) as { config?: string }).config, 'demo');
  });

  it('prints the URLs of both sites to stderr', () => {
    assert.match(stderr, /staging: +https:\/\/staging\.localhost:\d+\//);
    assert.match(stderr, /production: https:\/\/app\.localhost:\d+\//);
    assert.match(stderr, /plain HTTP on port \d+ redirects to these with 308/);
  });

  it('writes only JSON lines to stdout', () => {
    const lines = stdout.split('\n').filter((line) => line !== '');
    assert.ok(lines.length > 0, 'log lines on stdout');
    for (const line of lines) assert.doesNotThrow(() => JSON.parse(line), line);
  });

  for (const [host, site] of [
    ['staging.localhost', 'staging'],
    ['app.localhost', 'prod'],
  ] as const) {
    it(`serves the frontend and the API on ${host} over HTTPS`, async () => {
      const page = await httpsRequest(httpsPort, { host });
      assert.equal(page.status, 200);
      assert.match(page.body, /caliente-edge demo/);

      const api = await httpsRequest(httpsPort, { host, path: '/api/' });
      assert.equal(api.status, 200);
      const info = JSON.parse(api.body) as { site: string; forwardedProto: string };
      assert.equal(info.site, site);
      assert.equal(info.forwardedProto, 'https');
    });
  }

  it('starts with both demo upstreams healthy', async () => {
    const verdicts = (): string[] => stdout.match(/"msg":"upstream (un)?healthy"/g) ?? [];
    await waitUntil(() => verdicts().length >= 2, 30_000, 'first health verdicts');
    assert.doesNotMatch(stdout, /unhealthy/);
    assert.deepEqual(verdicts(), ['"msg":"upstream healthy"', '"msg":"upstream healthy"']);
  });

  it('redirects plain HTTP to HTTPS', async () => {
    const response = await httpRequest(httpPort, { host: 'app.localhost', path: '/x?y=1' });
    assert.equal(response.status, 308);
    assert.equal(response.headers.location, `https://app.localhost:${httpsPort}/x?y=1`);
  });

  it('echoes WebSocket messages', async () => {
    const options: WebSocket.ClientOptions & { servername: string } = {
      headers: { host: 'app.localhost' },
      servername: 'app.localhost',
      rejectUnauthorized: false,
    };
    const socket = new WebSocket(`wss://127.0.0.1:${httpsPort}/api/ws`, options);
    await new Promise((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('error', reject);
    });
    const echoed = new Promise<string>((resolve) =>
      socket.once('message', (data) => resolve(data.toString())),
    );
    socket.send('hello demo');
    assert.equal(await echoed, 'hello demo');
    socket.close();
  });
});

describe('npm start', () => {
  /** Starts `npm start` in its own process group, as a terminal runs it. */
  function startDemo(): {
    child: ReturnType<typeof spawn>;
    output: () => string;
    closed: Promise<number | string>;
  } {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      EDGE_DEMO_HTTP_PORT: '0',
      EDGE_DEMO_HTTPS_PORT: '0',
    };
    delete env.EDGE_CONFIG;
    const child = spawn('npm', ['start'], { env, detached: true });
    groups.push(child.pid!);
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    // `close` waits for every process holding the output pipes, the edge under npm included.
    const closed = new Promise<number | string>((resolve) =>
      child.on('close', (code, signal) => resolve(code ?? `${signal}`)),
    );
    return { child, output: () => output, closed };
  }

  async function httpsPortOf(output: () => string): Promise<number> {
    await waitUntil(() => /"msg":"edge started"/.test(output()), 90_000, 'edge start');
    return Number(/staging: +https:\/\/staging\.localhost:(\d+)\//.exec(output())![1]);
  }

  /** Resolves with the exit code of npm once every process of the demo is gone. */
  function exitCodeOf(demo: ReturnType<typeof startDemo>): Promise<number | string> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<string>((resolve) => {
      timer = setTimeout(() => resolve('still running after 30 s'), 30_000);
    });
    return Promise.race([demo.closed, timeout]).finally(() => clearTimeout(timer));
  }

  const groups: number[] = [];
  after(() => {
    // A failed test can leave the edge running without npm, in the same process group.
    for (const group of groups) {
      try {
        process.kill(-group, 'SIGKILL');
      } catch {
        // The group is already gone.
      }
    }
  });

  function refusesConnections(port: number): Promise<boolean> {
    return new Promise((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(false);
      });
      socket.once('error', () => resolve(true));
    });
  }

  it('stops the edge on SIGTERM to the npm process', async () => {
    const demo = startDemo();
    const port = await httpsPortOf(demo.output);
    demo.child.kill('SIGTERM');

    assert.equal(await exitCodeOf(demo), 0);
    assert.match(demo.output(), /"msg":"edge stopped"/);
    assert.equal(await refusesConnections(port), true);
  });

  it('stops the edge cleanly on Ctrl+C', async () => {
    const demo = startDemo();
    const port = await httpsPortOf(demo.output);
    // A terminal sends SIGINT to the whole foreground process group; npm forwards another.
    process.kill(-demo.child.pid!, 'SIGINT');

    assert.equal(await exitCodeOf(demo), 0);
    assert.equal(demo.output().match(/"msg":"stopping"/g)?.length, 1);
    assert.match(demo.output(), /"msg":"edge stopped"/);
    assert.equal(await refusesConnections(port), true);
  });
});
