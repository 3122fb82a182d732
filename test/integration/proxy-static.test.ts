import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  httpsRequest,
  rawExchange,
  startTestEdge,
  statusOf,
  type TestEdge,
} from '../support/upstreams.ts';

const TLS = { tls: { servername: 'app.example.test' } };

describe('proxy static routes', () => {
  let edge: TestEdge;
  let dir: string;

  before(async () => {
    // The frontend root sits next to files that must never be served.
    dir = mkdtempSync(path.join(os.tmpdir(), 'edge-static-'));
    const root = path.join(dir, 'www');
    mkdirSync(path.join(root, 'assets'), { recursive: true });
    mkdirSync(path.join(root, 'docs'), { recursive: true });
    writeFileSync(path.join(root, 'index.html'), '<h1>app</h1>');
    writeFileSync(path.join(root, 'assets', 'app.js'), 'console.log(1)');
    writeFileSync(path.join(root, 'docs', 'index.html'), 'docs index');
    writeFileSync(path.join(root, '.env'), 'SECRET=1');
    writeFileSync(path.join(dir, 'edge-config.json'), '{"secret":"root:x"}');
    edge = await startTestEdge({
      sites: [
        {
          name: 'prod',
          hosts: ['app.example.test'],
          routes: [
            { path: '/', static: root, spa: true },
            { path: '/plain', static: root },
          ],
        },
      ],
    });
  });

  after(async () => {
    await edge.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('405 without 100 Continue for uploads', async () => {
    const raw = await rawExchange(
      edge.httpsPort,
      'POST /assets/app.js HTTP/1.1\r\nHost: app.example.test\r\nExpect: 100-continue\r\n' +
        'Content-Length: 2048\r\nConnection: close\r\n\r\n',
      TLS,
    );
    const fetched = await rawExchange(
      edge.httpsPort,
      'GET /assets/app.js HTTP/1.1\r\nHost: app.example.test\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n',
      TLS,
    );

    assert.equal(statusOf(raw), 405);
    assert.doesNotMatch(raw, /100 Continue/);
    assert.match(fetched, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
  });

  it('serves files and directory indexes', async () => {
    const index = await httpsRequest(edge.httpsPort, { path: '/' });
    const script = await httpsRequest(edge.httpsPort, { path: '/assets/app.js' });
    assert.equal(index.status, 200);
    assert.equal(index.body, '<h1>app</h1>');
    assert.equal(index.headers['cache-control'], 'no-cache');
    assert.equal(script.body, 'console.log(1)');
    assert.match(script.headers['content-type'] ?? '', /javascript/);
  });

  it('serves files below a route prefix and redirects a directory to its slash', async () => {
    const file = await httpsRequest(edge.httpsPort, { path: '/plain/assets/app.js' });
    const directory = await httpsRequest(edge.httpsPort, { path: '/plain/docs' });
    assert.equal(file.body, 'console.log(1)');
    assert.equal(directory.status, 301);
    assert.equal(directory.headers.location, '/plain/docs/');
  });

  it('answers history-mode app routes with index.html', async () => {
    for (const route of ['/users/42', '/settings', '/a%20b']) {
      const response = await httpsRequest(edge.httpsPort, { path: route });
      assert.equal(response.status, 200, route);
      assert.equal(response.body, '<h1>app</h1>');
    }
  });

  it('answers 404 for missing files with an extension and without spa', async () => {
    assert.equal((await httpsRequest(edge.httpsPort, { path: '/missing.js' })).status, 404);
    assert.equal((await httpsRequest(edge.httpsPort, { path: '/plain/users/42' })).status, 404);
  });

  it('never serves dotfiles', async () => {
    const response = await httpsRequest(edge.httpsPort, { path: '/plain/.env' });
    assert.equal(response.status, 404);
    assert.doesNotMatch(response.body, /SECRET/);
  });

  it('answers 405 to methods other than GET and HEAD', async () => {
    const response = await httpsRequest(edge.httpsPort, { method: 'POST', path: '/assets/app.js' });
    assert.equal(response.status, 405);
    assert.equal(response.headers.allow, 'GET, HEAD');
  });

  const traversals = [
    '/../../../../etc/passwd',
    '/%2e%2e/%2e%2e/%2e%2e/etc/passwd',
    '/..%2f..%2f..%2fetc%2fpasswd',
    '/assets/..%5c..%5c..%5cetc%5cpasswd',
    '//etc/passwd',
    '/static/../../edge-config.json',
    '/plain/../edge-config.json',
    '/plain/..%2fedge-config.json',
    '/plain/%2e%2e/edge-config.json',
    '/assets/%00/../app.js',
  ];
  for (const target of traversals) {
    it(`refuses the traversal ${target}`, async () => {
      const raw = await rawExchange(
        edge.httpsPort,
        `GET ${target} HTTP/1.1\r\nHost: app.example.test\r\nConnection: close\r\n\r\n`,
        TLS,
      );
      assert.ok([400, 403, 404].includes(statusOf(raw)), `${target}: ${statusOf(raw)}`);
      assert.doesNotMatch(raw, /root:/);
      assert.doesNotMatch(raw, /secret/);
      assert.doesNotMatch(raw, /<h1>app<\/h1>/);
    });
  }
});
