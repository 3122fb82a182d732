import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { afterPendingResponses } from '../../src/proxy/server.ts';

type OwnedSocket = PassThrough & { _httpMessage?: EventEmitter | null };

/** Creates a socket whose current response is `owner`, the way Node's server marks it. */
function ownedSocket(owner: EventEmitter | null): OwnedSocket {
  const socket: OwnedSocket = new PassThrough();
  socket._httpMessage = owner;
  return socket;
}

describe('afterPendingResponses', () => {
  it('runs at once on a socket without a response', () => {
    let ran = 0;
    afterPendingResponses(ownedSocket(null), () => ran++);
    assert.equal(ran, 1);
  });

  it('waits for each pipelined response in turn', () => {
    const first = new EventEmitter();
    const second = new EventEmitter();
    const socket = ownedSocket(first);
    let ran = 0;
    afterPendingResponses(socket, () => ran++);

    socket._httpMessage = second;
    first.emit('finish');
    assert.equal(ran, 0, 'the second response still owns the socket');
    socket._httpMessage = null;
    second.emit('finish');
    assert.equal(ran, 1);
  });

  it('gives up when the last response ends the connection', () => {
    const owner = new EventEmitter();
    const socket = ownedSocket(owner);
    let ran = 0;
    afterPendingResponses(socket, () => ran++);

    socket._httpMessage = null;
    socket.end();
    owner.emit('finish');
    assert.equal(ran, 0);
  });

  it('forgets the response when the socket closes first', () => {
    const owner = new EventEmitter();
    const socket = ownedSocket(owner);
    let ran = 0;
    afterPendingResponses(socket, () => ran++);

    socket.emit('close');
    assert.equal(owner.listenerCount('finish'), 0);
    owner.emit('finish');
    assert.equal(ran, 0);
  });

  it('passes the socket drain on to a waiting response', () => {
    const owner = Object.assign(new EventEmitter(), { writableNeedDrain: true });
    const socket = ownedSocket(owner);
    let drains = 0;
    owner.on('drain', () => drains++);
    afterPendingResponses(socket, () => {});

    socket.emit('drain');
    assert.equal(drains, 1);
    owner.writableNeedDrain = false;
    socket.emit('drain');
    assert.equal(drains, 1, 'no drain for a response that does not wait');
  });
});
