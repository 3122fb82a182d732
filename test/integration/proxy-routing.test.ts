import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { serviceKey, Target } from '../../src/targets/registry.ts';
import {
  httpsRequest,
  rawExchange,
  startTestEdge,
  startUpstream,
  statusOf,
  type TestEdge,
  type TestUpstream,
} from '../support/upstreams.ts';

describe('proxy routing', () => {
  let edge: TestEdge;
  let api: TestUpstream;
  let web: TestUpstream;
  let stripped: TestUpstream;
  let staging: TestUpstream;
  let service: TestUpstream;
  const echoPath = (req: { url?: string }, res: { end(text: string): void }): void =>
    res.end(req.url ?? '');

  before(async () => {
    api = await startUpstream((req, res) => res.end(`api ${req.url}`));
    web = await startUpstream((req, res) => res.end(`web ${req.url}`));
    stripped = await startUpstream((req, res) => res.end(`stripped ${req.url}`));
    staging = await startUpstream((req, res) => res.end(`staging ${req.url}`));
    service = await startUpstream(echoPath);
    edge = await startTestEdge({
      sites: [
        {
          name: 'prod',
          hosts: ['app.example.test', 'www.example.test'],
          routes: [
            { path: '/', upstream: web.origin },
            { path: '/api', upstream: api.origin },
            { path: '/files/', upstream: stripped.origin, stripPrefix: true },
            { path: '/svc', service: 'web' },
          ],
        },
        {
          name: 'staging',
          hosts: ['staging.example.test'],
          routes: [{ path: '/', upstream: staging.origin }],
        },
      ],
      services: {
        web: { container: 'web-1', image: 'example/web', port: 80, environment: 'prod' },
      },
      deploy: { environments: { prod: { secretEnv: 'DEPLOY_SECRET_PROD' } } },
    });
  });

  after(async () => {
    await edge.stop();
    for (const upstream of [api, web, stripped, staging, service]) await upstream.close();
  });

  it('routes by Host to the right site', async () => {
    const prod = await httpsRequest(edge.httpsPort, { host: 'app.example.test' });
    const stage = await httpsRequest(edge.httpsPort, { host: 'staging.example.test' });
    assert.equal(prod.body, 'web /');
    assert.equal(stage.body, 'staging /');
  });

  it('matches Host in any case, with a port and a trailing dot', async () => {
    for (const host of [
      'APP.Example.TEST',
      'app.example.test:8443',
      'app.example.test.',
      'www.example.test',
    ]) {
      const response = await httpsRequest(edge.httpsPort, { host, servername: 'app.example.test' });
      assert.equal(response.status, 200, host);
    }
  });

  it('answers an unknown Host with 421 and a small plain page', async () => {
    const response = await httpsRequest(edge.httpsPort, { host: 'other.example.test' });
    assert.equal(response.status, 421);
    assert.match(response.headers['content-type'] ?? '', /^text\/plain/);
    assert.ok(response.body.length < 200);
    assert.equal(
      web.requests.some((request) => request.headers.host === 'other.example.test'),
      false,
    );
  });

  it('answers an IP address as Host with 421, never a default site', async () => {
    const v4 = await httpsRequest(edge.httpsPort, { host: '127.0.0.1', servername: '' });
    const v6 = await rawExchange(
      edge.httpsPort,
      'GET / HTTP/1.1\r\nHost: [::1]:443\r\nConnection: close\r\n\r\n',
      {
        tls: {},
      },
    );
    assert.equal(v4.status, 421);
    assert.equal(statusOf(v6), 421);
  });

  it('answers 421 when the TLS server name belongs to another site', async () => {
    const response = await httpsRequest(edge.httpsPort, {
      host: 'app.example.test',
      servername: 'staging.example.test',
    });
    assert.equal(response.status, 421);
  });

  it('checks the TLS server name on every request of a connection', async () => {
    const raw = await rawExchange(
      edge.httpsPort,
      'GET /a HTTP/1.1\r\nHost: staging.example.test\r\n\r\n' +
        'GET /b HTTP/1.1\r\nHost: app.example.test\r\nConnection: close\r\n\r\n',
      { tls: { servername: 'staging.example.test' } },
    );
    const statuses = [...raw.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((match) => match[1]);
    assert.deepEqual(statuses, ['200', '421']);
  });

  it('answers a missing Host with 400 on HTTP/1.1 and HTTP/1.0', async () => {
    const v11 = await rawExchange(edge.httpsPort, 'GET /api/ping HTTP/1.1\r\n\r\n', {
      tls: { servername: 'app.example.test' },
    });
    const v10 = await rawExchange(edge.httpsPort, 'GET / HTTP/1.0\r\n\r\n', {
      tls: { servername: 'app.example.test' },
    });
    assert.equal(statusOf(v11), 400);
    assert.equal(statusOf(v10), 400);
  });

  it('answers two Host lines with 400', async () => {
    const raw = await rawExchange(
      edge.httpsPort,
      'GET / HTTP/1.1\r\nHost: app.example.test\r\nHost: staging.example.test\r\n\r\n',
      { tls: { servername: 'app.example.test' } },
    );
    assert.equal(statusOf(raw), 400);
    const after = await httpsRequest(edge.httpsPort);
    assert.equal(after.status, 200);
  });

  it('chooses the longest prefix on segment boundaries', async () => {
    assert.equal((await httpsRequest(edge.httpsPort, { path: '/api' })).body, 'api /api');
    assert.equal(
      (await httpsRequest(edge.httpsPort, { path: '/api/x?y=1' })).body,
      'api /api/x?y=1',
    );
    assert.equal((await httpsRequest(edge.httpsPort, { path: '/apix' })).body, 'web /apix');
  });

  it('forwards the raw path byte for byte', async () => {
    for (const path of ['/api/a%2Fb', '/api//double', '/api/%7Euser', '/api/x?q=%20&r=a%26b']) {
      const response = await httpsRequest(edge.httpsPort, { path });
      assert.equal(response.body, `api ${path}`);
    }
  });

  it('routes on the normalised path but forwards the raw one', async () => {
    const raw = await rawExchange(
      edge.httpsPort,
      'GET /x/../api/y HTTP/1.1\r\nHost: app.example.test\r\nConnection: close\r\n\r\n',
      { tls: { servername: 'app.example.test' } },
    );
    assert.match(raw, /api \/x\/\.\.\/api\/y$/);
  });

  it('removes the route prefix when stripPrefix is set', async () => {
    assert.equal(
      (await httpsRequest(edge.httpsPort, { path: '/files/a/b?c' })).body,
      'stripped /a/b?c',
    );
    assert.equal((await httpsRequest(edge.httpsPort, { path: '/files' })).body, 'stripped /');
  });

  it('answers 503 while a service has no running target, then follows a switch', async () => {
    const before = await httpsRequest(edge.httpsPort, { path: '/svc/x' });
    assert.equal(before.status, 503);
    assert.match(before.body, /no upstream/);

    edge.context.targets.switch(serviceKey('web'), new Target(service.origin, 'container-1'));
    const after = await httpsRequest(edge.httpsPort, { path: '/svc/x' });
    assert.equal(after.status, 200);
    assert.equal(after.body, '/svc/x');
  });

  for (const [name, path] of [
    ['a malformed percent escape', '/api/%zz'],
    ['an encoded NUL byte', '/api/%00'],
  ]) {
    it(`rejects ${name} with 400`, async () => {
      const raw = await rawExchange(
        edge.httpsPort,
        `GET ${path} HTTP/1.1\r\nHost: app.example.test\r\n\r\n`,
        { tls: { servername: 'app.example.test' } },
      );
      assert.equal(statusOf(raw), 400);
    });
  }

  it('routes an absolute-form target on its authority', async () => {
    const raw = await rawExchange(
      edge.httpsPort,
      'GET https://staging.example.test/z HTTP/1.1\r\nHost: staging.example.test:8443\r\nConnection: close\r\n\r\n',
      { tls: { servername: 'staging.example.test' } },
    );
    assert.equal(statusOf(raw), 200);
    assert.match(raw, /staging \/z$/);
    assert.equal(staging.requests.at(-1)!.headers.host, 'staging.example.test');
  });

  it('forwards the absolute-form authority as Host, not the Host header', async () => {
    const raw = await rawExchange(
      edge.httpsPort,
      'GET https://app.example.test/api/x HTTP/1.1\r\nHost: evil.attacker.test\r\nConnection: close\r\n\r\n',
      { tls: { servername: 'app.example.test' } },
    );
    assert.equal(statusOf(raw), 200);
    const received = api.requests.at(-1)!;
    assert.equal(received.url, '/api/x');
    assert.deepEqual(
      received.rawHeaders.filter(
        (_, i, list) => i % 2 === 1 && list[i - 1]!.toLowerCase() === 'host',
      ),
      ['app.example.test'],
    );
    assert.equal(received.headers['x-forwarded-host'], 'app.example.test');
  });

  it('answers an absolute-form target with two Host lines with 400', async () => {
    const before = staging.requests.length;
    const raw = await rawExchange(
      edge.httpsPort,
      'GET http://staging.example.test/ HTTP/1.1\r\nHost: app.example.test\r\nHost: app.example.test\r\n\r\n',
      { tls: { servername: 'staging.example.test' } },
    );
    assert.equal(statusOf(raw), 400);
    assert.equal(staging.requests.length, before);
  });

  it('answers an absolute-form target without a valid Host with 400', async () => {
    for (const hostLine of ['', 'Host: [::1\r\n', 'Host: staging.example.test:99999\r\n']) {
      const raw = await rawExchange(
        edge.httpsPort,
        `GET https://staging.example.test/z HTTP/1.1\r\n${hostLine}Connection: close\r\n\r\n`,
        { tls: { servername: 'staging.example.test' } },
      );
      assert.equal(statusOf(raw), 400, JSON.stringify(hostLine));
    }
  });

  it('answers a Host port outside 1-65535 with 400', async () => {
    for (const host of ['app.example.test:99999', 'app.example.test:0', 'app.example.test:65536']) {
      const raw = await rawExchange(
        edge.httpsPort,
        `GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
        { tls: { servername: 'app.example.test' } },
      );
      assert.equal(statusOf(raw), 400, host);
    }
    const highest = await httpsRequest(edge.httpsPort, { host: 'app.example.test:65535' });
    assert.equal(highest.status, 200);
  });

  it('counts requests per route in config order', () => {
    const names = edge.context.routeStats.map((stats) => `${stats.site} ${stats.route}`);
    assert.deepEqual(names, ['prod /', 'prod /api', 'prod /files/', 'prod /svc', 'staging /']);
    assert.ok(edge.context.routeStats[1]!.requests >= 5);
  });
});
