/**
 * Follows WebSocket frame boundaries (RFC 6455 section 5.2) in one direction of a tunnel without
 * copying or decoding payloads, so the edge can insert its own close frame between two frames.
 */
export class FrameBoundaryTracker {
  /** Header bytes seen of the frame whose header is incomplete. */
  private header = Buffer.alloc(14);
  private headerLength = 0;
  /** Payload bytes still to come of the current frame. */
  private remaining = 0;

  /** True between two frames. */
  get atBoundary(): boolean {
    return this.headerLength === 0 && this.remaining === 0;
  }

  /**
   * Consumes `chunk` from `offset`. With `stopAtBoundary`, stops at the first frame boundary at
   * or after `offset`. Returns the offset reached.
   */
  advance(chunk: Buffer, offset = 0, stopAtBoundary = false): number {
    let position = offset;
    while (position < chunk.length) {
      if (stopAtBoundary && this.atBoundary) return position;

      if (this.remaining > 0) {
        const take = Math.min(this.remaining, chunk.length - position);
        this.remaining -= take;
        position += take;
        continue;
      }

      this.header[this.headerLength++] = chunk[position++]!;
      const needed = headerSize(this.header, this.headerLength);
      if (needed !== undefined && this.headerLength === needed) {
        this.remaining = payloadLength(this.header);
        this.headerLength = 0;
      }
    }
    return position;
  }
}

/** Header length once the first two bytes are known: 2, plus 2 or 8 length bytes, plus 4 of mask. */
function headerSize(header: Buffer, known: number): number | undefined {
  if (known < 2) return undefined;
  const length7 = header[1]! & 0x7f;
  const masked = (header[1]! & 0x80) !== 0;
  const extended = length7 === 126 ? 2 : length7 === 127 ? 8 : 0;
  return 2 + extended + (masked ? 4 : 0);
}

function payloadLength(header: Buffer): number {
  const length7 = header[1]! & 0x7f;
  if (length7 === 126) return header.readUInt16BE(2);
  if (length7 === 127) return Number(header.readBigUInt64BE(2));
  return length7;
}

/** Longest close reason that fits a control frame: 125 bytes of payload less the 2-byte code. */
const MAX_REASON_BYTES = 123;

/** An unmasked close frame, as a server sends it to a client. */
export function closeFrame(code: number, reason = ''): Buffer {
  let text = Buffer.from(reason, 'utf8');
  if (text.length > MAX_REASON_BYTES) text = text.subarray(0, MAX_REASON_BYTES);
  const frame = Buffer.alloc(4 + text.length);
  frame[0] = 0x88;
  frame[1] = 2 + text.length;
  frame.writeUInt16BE(code, 2);
  text.copy(frame, 4);
  return frame;
}
