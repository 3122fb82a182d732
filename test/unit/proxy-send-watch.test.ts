import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { describe, it } from 'node:test';
import pino from 'pino';
import { SendWatch } from '../../src/proxy/send-watch.ts';

/** The socket fields the watch reads, with a counter of destroy calls. */
class FakeSocket extends EventEmitter {
  writableLength = 0;
  bytesWritten = 0;
  destroyed = false;
  remoteAddress = '127.0.0.1';
  destroyCalls = 0;

  destroy(): void {
    this.destroyCalls++;
    this.destroyed = true;
  }
}

function watch(sendMs: number): { watch: SendWatch; clock: { now: number } } {
  const clock = { now: 1_000 };
  const sendWatch = new SendWatch(sendMs, pino({ level: 'silent' }), () => clock.now);
  return { watch: sendWatch, clock };
}

describe('send watch', () => {
  it('closes a socket whose waiting bytes do not move', () => {
    const { watch: sendWatch, clock } = watch(1_000);
    const socket = new FakeSocket();
    sendWatch.add(socket as unknown as Socket);
    socket.writableLength = 65_536;
    socket.bytesWritten = 200_000;

    sendWatch.check();
    clock.now += 999;
    sendWatch.check();
    assert.equal(socket.destroyCalls, 0, 'not before sendMs');
    clock.now += 1;
    sendWatch.check();
    assert.equal(socket.destroyCalls, 1);
    sendWatch.stop();
  });

  it('keeps a socket that takes bytes slowly', () => {
    const { watch: sendWatch, clock } = watch(1_000);
    const socket = new FakeSocket();
    sendWatch.add(socket as unknown as Socket);
    socket.writableLength = 65_536;
    socket.bytesWritten = 200_000;

    for (let i = 0; i < 5; i++) {
      sendWatch.check();
      clock.now += 900;
      // One write done and the next one queued: the same bytes wait, more were handed over.
      socket.bytesWritten += 65_536;
    }
    assert.equal(socket.destroyCalls, 0);
    sendWatch.stop();
  });

  it('ignores a socket with nothing to send', () => {
    const { watch: sendWatch, clock } = watch(1_000);
    const socket = new FakeSocket();
    sendWatch.add(socket as unknown as Socket);

    sendWatch.check();
    clock.now += 5_000;
    sendWatch.check();
    assert.equal(socket.destroyCalls, 0);
    sendWatch.stop();
  });

  it('counts a stall from when the bytes start waiting', () => {
    const { watch: sendWatch, clock } = watch(1_000);
    const socket = new FakeSocket();
    sendWatch.add(socket as unknown as Socket);
    sendWatch.check();
    clock.now += 5_000;
    socket.writableLength = 10;
    socket.bytesWritten = 10;
    sendWatch.check();
    clock.now += 500;
    sendWatch.check();
    assert.equal(socket.destroyCalls, 0);
    sendWatch.stop();
  });

  it('watches nothing when the timeout is 0', () => {
    const { watch: sendWatch, clock } = watch(0);
    const socket = new FakeSocket();
    sendWatch.add(socket as unknown as Socket);
    socket.writableLength = 10;
    sendWatch.check();
    clock.now += 60_000;
    sendWatch.check();
    assert.equal(socket.destroyCalls, 0);
  });
});
