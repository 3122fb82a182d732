import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { EdgeRequest } from '../../src/edge-api.ts';
import {
  httpRequest,
  httpsRequest,
  rawExchange,
  startTestEdge,
  startUpstream,
  statusOf,
  type TestEdge,
  type TestUpstream,
} from '../support/upstreams.ts';

describe('proxy /_edge dispatch', () => {
  let edge: TestEdge;
  let upstream: TestUpstream;
  const seen: EdgeRequest[] = [];

  before(async () => {
    upstream = await startUpstream();
    edge = await startTestEdge({
      sites: [
        {
          name: 'prod',
          hosts: ['app.example.test'],
          routes: [{ path: '/', upstream: 'http://127.0.0.1:9' }],
        },
      ],
    });
    edge.context.api.add('GET', '/status', (request) => {
      seen.push(request);
      request.res.end(`status of ${request.site.name}`);
    });
    edge.context.api.add('POST', '/deploy/:id', (request) => {
      seen.push(request);
      request.res.end(`deploy ${request.params[0]}`);
    });
    edge.context.api.add('GET', '/boom', async () => {
      throw new Error('handler bug');
    });
  });

  after(async () => {
    await edge.stop();
    await upstream.close();
  });

  it('passes the request to the registered handler', async () => {
    const response = await httpsRequest(edge.httpsPort, { path: '/_edge/status?verbose=1' });
    assert.equal(response.status, 200);
    assert.equal(response.body, 'status of prod');
    const request = seen.at(-1)!;
    assert.equal(request.path, '/status');
    assert.equal(request.query.get('verbose'), '1');
    assert.equal(request.secure, true);
    assert.equal(request.clientAddress, '127.0.0.1');
    assert.equal(request.reqId, response.headers['x-request-id']);
  });

  it('passes path parameters', async () => {
    const response = await httpsRequest(edge.httpsPort, {
      method: 'POST',
      path: '/_edge/deploy/abc-1',
    });
    assert.equal(response.body, 'deploy abc-1');
  });

  it('reaches the edge API through every spelling of the prefix, never the upstream', async () => {
    for (const path of [
      '//_edge/status',
      '/%5Fedge/status',
      '/_EDGE/status',
      '/x/../_edge/status',
      '/_edge//status',
    ]) {
      const raw = await rawExchange(
        edge.httpsPort,
        `GET ${path} HTTP/1.1\r\nHost: app.example.test\r\nConnection: close\r\n\r\n`,
        {
          tls: { servername: 'app.example.test' },
        },
      );
      assert.equal(statusOf(raw), 200, path);
      assert.match(raw, /status of prod$/, path);
    }
  });

  it('answers 404 for an unknown edge path and 405 for a wrong method', async () => {
    const missing = await httpsRequest(edge.httpsPort, { path: '/_edge/nothing' });
    const wrongMethod = await httpsRequest(edge.httpsPort, {
      method: 'DELETE',
      path: '/_edge/status',
    });
    assert.equal(missing.status, 404);
    assert.equal(wrongMethod.status, 405);
  });

  it('answers 500 when a handler fails, and logs it once', async () => {
    const response = await httpsRequest(edge.httpsPort, { path: '/_edge/boom' });
    assert.equal(response.status, 500);
    assert.doesNotMatch(response.body, /handler bug/);
    assert.equal(edge.logs.filter((line) => line.msg === 'edge api handler failed').length, 1);
  });

  it('redirects the edge API on plain HTTP instead of serving it', async () => {
    const response = await httpRequest(edge.httpPort, { path: '/_edge/status' });
    assert.equal(response.status, 308);
    assert.equal(
      response.headers.location,
      `https://app.example.test:${edge.httpsPort}/_edge/status`,
    );
  });

  it('refuses a WebSocket upgrade below /_edge', async () => {
    const raw = await rawExchange(
      edge.httpsPort,
      'GET /_edge/status HTTP/1.1\r\nHost: app.example.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
      { tls: { servername: 'app.example.test' } },
    );
    assert.equal(statusOf(raw), 404);
  });
});

describe('proxy network guard', () => {
  let edge: TestEdge;
  let upstream: TestUpstream;
  const decisions: string[] = [];

  before(async () => {
    upstream = await startUpstream();
    edge = await startTestEdge(
      {
        sites: [
          {
            name: 'prod',
            hosts: ['app.example.test'],
            routes: [{ path: '/', upstream: upstream.origin }],
          },
          {
            name: 'staging',
            hosts: ['staging.example.test'],
            routes: [{ path: '/', upstream: upstream.origin }],
          },
        ],
      },
      {
        networkGuard: {
          allows: (address, site) => {
            decisions.push(`${address} ${site.name}`);
            return site.name !== 'staging';
          },
        },
      },
    );
    edge.context.api.add('GET', '/status', (request) => {
      request.res.end('ok');
    });
  });

  after(async () => {
    await edge.stop();
    await upstream.close();
  });

  it('answers 403 before proxying when the guard refuses the client', async () => {
    const before = upstream.requests.length;
    const response = await httpsRequest(edge.httpsPort, { host: 'staging.example.test' });
    assert.equal(response.status, 403);
    assert.match(response.body, /this site is not reachable from your network/);
    assert.equal(upstream.requests.length, before);
    assert.ok(decisions.includes('127.0.0.1 staging'));
  });

  it('applies the guard to the edge API too', async () => {
    const refused = await httpsRequest(edge.httpsPort, {
      host: 'staging.example.test',
      path: '/_edge/status',
    });
    const allowed = await httpsRequest(edge.httpsPort, {
      host: 'app.example.test',
      path: '/_edge/status',
    });
    assert.equal(refused.status, 403);
    assert.equal(allowed.status, 200);
  });
});
