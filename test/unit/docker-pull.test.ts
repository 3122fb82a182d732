import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DockerodeEngine } from '../../src/docker/dockerode-engine.ts';
import { EdgeError } from '../../src/errors.ts';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

/** A Docker Engine stub on a unix socket that answers POST /images/create with `handler`. */
async function startEngineStub(
  handler: Handler,
): Promise<{ socket: string; close(): Promise<void> }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'engine-stub-'));
  const socket = path.join(dir, 'docker.sock');
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  return {
    socket,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          rmSync(dir, { recursive: true, force: true });
          resolve();
        });
      }),
  };
}

const line = (value: unknown): string => `${JSON.stringify(value)}\n`;
const REF = 'registry.example.test/web:v2';

describe('docker pull', () => {
  let stub: Awaited<ReturnType<typeof startEngineStub>>;
  let handler: Handler = () => undefined;

  before(async () => {
    stub = await startEngineStub((req, res) => handler(req, res));
  });
  after(() => stub.close());

  it('resolves only after the progress stream ended', async () => {
    let endedAt = 0;
    handler = (req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write(line({ status: 'Pulling from web', id: 'v2' }));
      const timer = setInterval(() => res.write(line({ status: 'Downloading', id: 'abc' })), 30);
      setTimeout(() => {
        clearInterval(timer);
        res.end(line({ status: `Status: Downloaded newer image for ${REF}` }));
        endedAt = Date.now();
      }, 300);
    };
    const events: unknown[] = [];

    await new DockerodeEngine(stub.socket).pullImage(REF, undefined, (event) => events.push(event));

    assert.ok(endedAt > 0, 'the stub finished the stream before the pull resolved');
    assert.ok(events.length >= 5);
    assert.deepEqual(events.at(-1), { status: `Status: Downloaded newer image for ${REF}` });
  });

  it('fails on an error line inside a 200 stream', async () => {
    handler = (req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write(line({ status: 'Pulling from web', id: 'v3' }));
      res.end(line({ errorDetail: { message: 'manifest unknown' }, error: 'manifest unknown' }));
    };

    await assert.rejects(new DockerodeEngine(stub.socket).pullImage(REF, undefined), (error) => {
      assert.ok(error instanceof EdgeError);
      assert.equal(error.code, 'EDGE_PULL_FAILED');
      assert.equal(error.message, `pulling image ${REF}: manifest unknown`);
      return true;
    });
  });

  it('fails on an authentication error line', async () => {
    handler = (req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(line({ error: 'unauthorized: authentication required' }));
    };

    await assert.rejects(
      new DockerodeEngine(stub.socket).pullImage(REF, undefined),
      /pulling image registry\.example\.test\/web:v2: unauthorized: authentication required/,
    );
  });

  it('fails when the stream breaks mid-way', async () => {
    handler = (req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write(line({ status: 'Pulling from web', id: 'v2' }));
      setTimeout(() => res.socket?.destroy(), 50);
    };

    await assert.rejects(
      new DockerodeEngine(stub.socket).pullImage(REF, undefined),
      /stream broke/,
    );
  });

  it('fails with the Engine message on an HTTP error', async () => {
    handler = (req, res) => {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ message: `manifest for ${REF} not found: manifest unknown` }));
    };

    await assert.rejects(
      new DockerodeEngine(stub.socket).pullImage(REF, undefined),
      (error) =>
        error instanceof EdgeError && error.message.endsWith('not found: manifest unknown'),
    );
  });

  it('sends configured registry credentials', async () => {
    let authHeader = '';
    let query = '';
    handler = (req, res) => {
      authHeader = String(req.headers['x-registry-auth'] ?? '');
      query = req.url ?? '';
      res.writeHead(200);
      res.end(line({ status: 'Status: Image is up to date' }));
    };
    const credentials = {
      username: 'ci',
      password: 'token-value',
      serveraddress: 'registry.example.test',
    };

    await new DockerodeEngine(stub.socket).pullImage(REF, credentials);

    const decoded = JSON.parse(Buffer.from(authHeader, 'base64').toString('utf8')) as Record<
      string,
      string
    >;
    assert.equal(decoded.username, 'ci');
    assert.equal(decoded.password, 'token-value');
    assert.match(query, /fromImage=registry\.example\.test%2Fweb/);
    assert.match(query, /tag=v2/);
  });
});
