import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  edgeSubPath,
  encodePath,
  matchesPrefix,
  normalisePath,
  parseRequestTarget,
} from '../../src/proxy/path.ts';

describe('normalisePath', () => {
  const cases: [string, string][] = [
    ['/api/x', '/api/x'],
    ['//_edge/', '/_edge/'],
    ['/%5Fedge/', '/_edge/'],
    ['/x/../_edge/', '/_edge/'],
    ['/./a/./b', '/a/b'],
    ['/../../../../etc/passwd', '/etc/passwd'],
    ['/%2e%2e/%2e%2e/etc/passwd', '/etc/passwd'],
    ['/..%2f..%2fetc%2fpasswd', '/etc/passwd'],
    ['/assets/..%5c..%5cetc%5cpasswd', '/etc/passwd'],
    ['/a//b/', '/a/b/'],
    ['/', '/'],
    ['/a%20b', '/a b'],
  ];
  for (const [input, expected] of cases) {
    it(`reads ${input} as ${expected}`, () => {
      assert.equal(normalisePath(input), expected);
    });
  }

  it('rejects a percent sign without two hex digits', () => {
    assert.equal(normalisePath('/a%zz'), undefined);
    assert.equal(normalisePath('/a%4'), undefined);
  });

  it('rejects an encoded NUL byte', () => {
    assert.equal(normalisePath('/api/%00'), undefined);
    assert.equal(normalisePath('/api/x%00.json'), undefined);
    assert.equal(normalisePath('/api/%000'), undefined);
    assert.equal(normalisePath('/api/%100'), '/api/\x100');
  });
});

describe('edgeSubPath', () => {
  it('finds /_edge in any letter case', () => {
    assert.equal(edgeSubPath('/_edge/status'), '/status');
    assert.equal(edgeSubPath('/_EDGE/status'), '/status');
    assert.equal(edgeSubPath('/_Edge'), '/');
  });

  it('ignores paths that only start with the same letters', () => {
    assert.equal(edgeSubPath('/_edges/x'), undefined);
    assert.equal(edgeSubPath('/api/_edge/'), undefined);
    assert.equal(edgeSubPath('/'), undefined);
  });
});

describe('matchesPrefix', () => {
  it('matches on segment boundaries only', () => {
    assert.equal(matchesPrefix('/api', '/api'), true);
    assert.equal(matchesPrefix('/api/x', '/api'), true);
    assert.equal(matchesPrefix('/apix', '/api'), false);
    assert.equal(matchesPrefix('/anything', ''), true);
  });
});

describe('parseRequestTarget', () => {
  it('splits origin form without decoding', () => {
    assert.deepEqual(parseRequestTarget('/a%2Fb?x=%20'), {
      path: '/a%2Fb',
      query: '?x=%20',
      authority: undefined,
    });
  });

  it('takes the authority of absolute form', () => {
    assert.deepEqual(parseRequestTarget('http://App.Example.test:80/x?y'), {
      path: '/x',
      query: '?y',
      authority: 'App.Example.test:80',
    });
  });

  it('rejects asterisk form', () => {
    assert.equal(parseRequestTarget('*'), undefined);
  });
});

describe('encodePath', () => {
  it('encodes spaces and control bytes but keeps path characters', () => {
    assert.equal(encodePath('/a b/\u0001/~x:@'), '/a%20b/%01/~x:@');
  });
});
