import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { closeFrame, FrameBoundaryTracker } from '../../src/proxy/ws-frames.ts';

/** An unmasked server frame with `length` payload bytes. */
function frame(length: number, opcode = 0x2): Buffer {
  const header =
    length < 126
      ? Buffer.from([0x80 | opcode, length])
      : length < 65536
        ? Buffer.from([0x80 | opcode, 126, length >> 8, length & 0xff])
        : Buffer.concat([Buffer.from([0x80 | opcode, 127]), bigLength(length)]);
  return Buffer.concat([header, Buffer.alloc(length, 0x61)]);
}

function bigLength(length: number): Buffer {
  const bytes = Buffer.alloc(8);
  bytes.writeBigUInt64BE(BigInt(length));
  return bytes;
}

describe('FrameBoundaryTracker', () => {
  it('is at a boundary after whole frames of every length encoding', () => {
    const tracker = new FrameBoundaryTracker();
    tracker.advance(Buffer.concat([frame(5), frame(300), frame(70_000)]));
    assert.equal(tracker.atBoundary, true);
  });

  it('follows a frame split inside its header and its payload', () => {
    const tracker = new FrameBoundaryTracker();
    const bytes = frame(300);
    tracker.advance(bytes.subarray(0, 1));
    assert.equal(tracker.atBoundary, false);
    tracker.advance(bytes.subarray(1, 3));
    tracker.advance(bytes.subarray(3, 100));
    assert.equal(tracker.atBoundary, false);
    tracker.advance(bytes.subarray(100));
    assert.equal(tracker.atBoundary, true);
  });

  it('stops at the first boundary when asked', () => {
    const tracker = new FrameBoundaryTracker();
    const first = frame(10);
    const bytes = Buffer.concat([first, frame(10)]);
    tracker.advance(bytes.subarray(0, 4));
    const stop = tracker.advance(bytes, 4, true);
    assert.equal(stop, first.length);
    assert.equal(tracker.atBoundary, true);
  });

  it('counts the mask key of masked frames', () => {
    const tracker = new FrameBoundaryTracker();
    tracker.advance(Buffer.from([0x81, 0x80 | 2, 1, 2, 3, 4, 0x61]));
    assert.equal(tracker.atBoundary, false);
    tracker.advance(Buffer.from([0x62]));
    assert.equal(tracker.atBoundary, true);
  });
});

describe('closeFrame', () => {
  it('encodes code and reason in an unmasked close frame', () => {
    const bytes = closeFrame(1012, 'service restart');
    assert.equal(bytes[0], 0x88);
    assert.equal(bytes[1], 2 + 'service restart'.length);
    assert.equal(bytes.readUInt16BE(2), 1012);
    assert.equal(bytes.subarray(4).toString(), 'service restart');
  });

  it('cuts a reason to fit a control frame', () => {
    const bytes = closeFrame(1001, 'x'.repeat(300));
    assert.equal(bytes[1], 125);
  });
});
