import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ChallengeStore } from '../../src/tls/challenges.ts';

test('challenge answer matches host in any case and with port', () => {
  const store = new ChallengeStore();
  store.add('app.example.test', 'tok123', 'tok123.thumbprint');

  assert.equal(store.response('app.example.test', 'tok123'), 'tok123.thumbprint');
  assert.equal(store.response('APP.EXAMPLE.TEST', 'tok123'), 'tok123.thumbprint');
  assert.equal(store.response('app.example.test:80', 'tok123'), 'tok123.thumbprint');
  assert.equal(store.response('app.example.test.', 'tok123'), 'tok123.thumbprint');
});

test('challenge answer is withheld for other hosts and tokens', () => {
  const store = new ChallengeStore();
  store.add('app.example.test', 'tok123', 'tok123.thumbprint');

  assert.equal(store.response('app.example.test', 'nosuch'), undefined);
  assert.equal(store.response('other.example.test', 'tok123'), undefined);
  assert.equal(store.response('[::1]:80', 'tok123'), undefined);

  store.remove('tok123');
  assert.equal(store.response('app.example.test', 'tok123'), undefined);
});
