import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/load.ts';
import { HostTable, normaliseHost, requestHost } from '../../src/proxy/host.ts';

describe('normaliseHost', () => {
  const cases: [string, string][] = [
    ['App.Example.TEST', 'app.example.test'],
    ['app.example.test:8443', 'app.example.test'],
    ['app.example.test.', 'app.example.test'],
    ['app.example.test.:443', 'app.example.test'],
    ['[::1]:8443', '[::1]'],
    ['[2001:DB8::1]', '[2001:db8::1]'],
    ['203.0.113.7', '203.0.113.7'],
    ['app.example.test:65535', 'app.example.test'],
  ];
  for (const [input, expected] of cases) {
    it(`reads ${input} as ${expected}`, () => {
      assert.equal(normaliseHost(input), expected);
    });
  }

  const invalid = [
    '',
    'a b',
    'app.example.test:',
    'app.example.test:x',
    'user@host',
    '::1',
    '[::1',
    'a/b',
    'a..b',
    'app.example.test:0',
    'app.example.test:65536',
    'app.example.test:99999',
  ];
  for (const input of invalid) {
    it(`rejects ${JSON.stringify(input)}`, () => {
      assert.equal(normaliseHost(input), undefined);
    });
  }
});

describe('HostTable', () => {
  const config = parseConfig({
    sites: [
      {
        name: 'prod',
        hosts: ['app.example.test'],
        routes: [{ path: '/', upstream: 'http://a:1' }],
      },
      {
        name: 'preview',
        hosts: ['*.preview.example.test'],
        routes: [{ path: '/', upstream: 'http://b:1' }],
      },
    ],
  });
  const table = new HostTable(config.sites);

  it('finds a site by exact name in any case and with a port', () => {
    const match = table.match('APP.example.test:443');
    assert.equal(match.kind, 'site');
    assert.equal(match.kind === 'site' && match.site.name, 'prod');
  });

  it('matches a wildcard on one label only', () => {
    const one = table.match('pr-1.preview.example.test');
    assert.equal(one.kind === 'site' && one.site.name, 'preview');
    assert.equal(table.match('a.b.preview.example.test').kind, 'unknown');
    assert.equal(table.match('preview.example.test').kind, 'unknown');
  });

  it('reports unknown names and IP literals as unknown', () => {
    assert.equal(table.match('other.example.test').kind, 'unknown');
    assert.equal(table.match('[::1]').kind, 'unknown');
    assert.equal(table.match('127.0.0.1').kind, 'unknown');
  });

  it('reports invalid values as invalid', () => {
    assert.equal(table.match('bad host').kind, 'invalid');
  });
});

describe('requestHost', () => {
  const table = new HostTable(
    parseConfig({
      sites: [
        {
          name: 'prod',
          hosts: ['app.example.test'],
          routes: [{ path: '/', upstream: 'http://a:1' }],
        },
      ],
    }).sites,
  );

  it('uses the Host header for an origin-form target', () => {
    assert.equal(requestHost(table, undefined, 1, 'app.example.test'), 'app.example.test');
  });

  it('prefers the authority of an absolute-form target', () => {
    assert.equal(
      requestHost(table, 'app.example.test', 1, 'evil.example.test'),
      'app.example.test',
    );
  });

  it('rejects a missing, repeated or invalid Host even with an authority', () => {
    assert.equal(requestHost(table, 'app.example.test', 0, undefined), undefined);
    assert.equal(requestHost(table, 'app.example.test', 2, 'app.example.test'), undefined);
    assert.equal(requestHost(table, 'app.example.test', 1, '[::1'), undefined);
    assert.equal(requestHost(table, undefined, 2, 'app.example.test'), undefined);
  });
});
