import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { test } from 'node:test';
import type { EdgeContext } from '../../src/context.ts';
import { EdgeApi } from '../../src/edge-api.ts';
import { silentLogger } from '../../src/log.ts';
import { createProxyServers, type ProxyServers } from '../../src/proxy/server.ts';
import { TargetRegistry } from '../../src/targets/registry.ts';
import { createCertificateManager, type CertificateManager } from '../../src/tls/index.ts';
import { acmeConfig, FakeClock, FakeIssuer, waitFor } from '../support/acme-fakes.ts';
import { freeTcpPorts } from '../support/pebble.ts';

const HOST = 'app.example.test';
const KEY_AUTHORIZATION = 'tok123.thumbprint-of-the-account-key';
const VALIDATION_AGENT = "Mozilla/5.0 (compatible; Let's Encrypt validation server)";

interface Running {
  manager: CertificateManager;
  servers: ProxyServers;
  httpPort: number;
  release(): void;
}

/** Starts the edge's real listeners with an order held open while token `tok123` is pending. */
async function startWithPendingChallenge(): Promise<Running> {
  const [httpPort, httpsPort] = (await freeTcpPorts(2)) as [number, number];
  const base = await acmeConfig({ app: [HOST] });
  const config = { ...base, listen: { ...base.listen, address: '127.0.0.1', httpPort, httpsPort } };

  const clock = new FakeClock();
  const issuer = new FakeIssuer(clock);
  let release!: () => void;
  issuer.gate = new Promise((resolve) => (release = resolve));
  const originalIssue = issuer.issue.bind(issuer);
  issuer.issue = async (request) => {
    request.challenges.add(HOST, 'tok123', KEY_AUTHORIZATION);
    try {
      return await originalIssue(request);
    } finally {
      request.challenges.remove('tok123');
    }
  };

  const manager = await createCertificateManager({
    config,
    logger: silentLogger,
    issuer,
    now: clock.now,
  });
  const context: EdgeContext = {
    config,
    logger: silentLogger,
    targets: new TargetRegistry(),
    api: new EdgeApi(),
    certificates: manager,
    routeStats: [],
    startedAt: Date.now(),
  };
  const servers = await createProxyServers(context);
  await servers.listen();
  await manager.start();
  await waitFor(() => issuer.orders.length === 1, 5_000, 'order');
  return { manager, servers, httpPort, release };
}

/** Sends one raw request head and returns the whole response. */
function rawRequest(port: number, head: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let response = '';
    socket.on('data', (chunk: Buffer) => (response += chunk.toString()));
    socket.on('end', () => resolve(response));
    socket.on('error', reject);
    socket.end(head);
  });
}

function challengeRequest(host: string, token = 'tok123'): string {
  return (
    `GET /.well-known/acme-challenge/${token} HTTP/1.1\r\nHost: ${host}\r\n` +
    `User-Agent: ${VALIDATION_AGENT}\r\nAccept: */*\r\nConnection: close\r\n\r\n`
  );
}

function parse(response: string): { status: number; headers: string; body: string } {
  const [head = '', body = ''] = response.split('\r\n\r\n');
  return { status: Number(head.split(' ')[1]), headers: head.toLowerCase(), body };
}

async function stop(running: Running): Promise<void> {
  running.release();
  await running.servers.close(100);
  await running.manager.stop();
}

test('challenge answered on port 80 while the rest redirects', async (t) => {
  const running = await startWithPendingChallenge();
  t.after(() => stop(running));

  const answer = parse(await rawRequest(running.httpPort, challengeRequest(HOST)));
  const page = parse(
    await rawRequest(
      running.httpPort,
      `GET /index.html HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`,
    ),
  );

  assert.equal(answer.status, 200);
  assert.equal(answer.body, KEY_AUTHORIZATION);
  assert.doesNotMatch(answer.headers, /\r\nlocation:/);
  assert.equal(page.status, 308);
  assert.match(page.headers, /\r\nlocation: https:\/\/app\.example\.test/);
});

test('challenge answered for uppercase Host and Host with port', async (t) => {
  const running = await startWithPendingChallenge();
  t.after(() => stop(running));

  for (const host of ['APP.EXAMPLE.TEST', 'app.example.test:80']) {
    const answer = parse(await rawRequest(running.httpPort, challengeRequest(host)));
    assert.equal(answer.status, 200, host);
    assert.equal(answer.body, KEY_AUTHORIZATION, host);
  }
});

test('unknown challenge token gets a plain 404', async (t) => {
  const running = await startWithPendingChallenge();
  t.after(() => stop(running));

  const missing = parse(await rawRequest(running.httpPort, challengeRequest(HOST, 'nosuch')));
  const otherHost = parse(
    await rawRequest(running.httpPort, challengeRequest('other.example.test')),
  );

  assert.equal(missing.status, 404);
  assert.doesNotMatch(missing.headers, /\r\nlocation:/);
  assert.doesNotMatch(missing.body, /<html/i);
  assert.equal(otherHost.status, 404);
  assert.doesNotMatch(otherHost.body, /thumbprint/);
});
