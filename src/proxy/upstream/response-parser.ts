import { invalidResponse, parseHead, type ParsedHead } from './response-head.ts';

/** Largest response head accepted from an upstream, status line and header lines together. */
export const MAX_RESPONSE_HEAD_BYTES = 64 * 1024;
/** Largest chunk-size line or trailer section accepted in a chunked body. */
const MAX_CHUNK_LINE_BYTES = 4 * 1024;

const CRLF_CRLF = Buffer.from('\r\n\r\n');
const LF = 0x0a;
const CR = 0x0d;

/** Receives what the parser reads; a callback returning false stops the current `execute`. */
export interface ResponseSink {
  onResponseHead(head: ParsedHead): boolean;
  onResponseBody(chunk: Buffer): boolean;
}

const HEAD = 0;
const BODY_LENGTH = 1;
const CHUNK_SIZE = 2;
const CHUNK_DATA = 3;
const CHUNK_DATA_END = 4;
const TRAILERS = 5;
const BODY_UNTIL_CLOSE = 6;
const DONE = 7;

/**
 * Incremental, strict HTTP/1.1 response parser for one upstream connection: one response at a
 * time, started with `start(method)`. 1xx heads are read and dropped. Syntax and framing errors
 * are thrown as EDGE_UPSTREAM_INVALID_RESPONSE.
 */
export class ResponseParser {
  /** Current response's head, once read. */
  head: ParsedHead | undefined = undefined;
  /** Some byte of the current response arrived, so resending the request is no longer safe. */
  started = false;
  /** Bytes followed the end of the response in the same read: the connection is out of step. */
  trailingBytes = false;
  private readonly sink: ResponseSink;
  private state = DONE;
  private headOnly = false;
  private pending: Buffer | null = null;
  private line = '';
  private trailerBytes = 0;
  private remaining = 0;

  constructor(sink: ResponseSink) {
    this.sink = sink;
  }

  /** Prepares for the response to a request with `method`. */
  start(method: string): void {
    this.state = HEAD;
    this.head = undefined;
    this.started = false;
    this.trailingBytes = false;
    this.headOnly = method === 'HEAD';
    this.pending = null;
    this.line = '';
    this.trailerBytes = 0;
  }

  get done(): boolean {
    return this.state === DONE;
  }

  /** The body ends when the upstream closes the connection. */
  get readsUntilClose(): boolean {
    return this.state === BODY_UNTIL_CLOSE;
  }

  /** Parses `chunk`; stops early at the end of the response or when a callback returns false. */
  execute(chunk: Buffer): void {
    if (chunk.length > 0) this.started = true;
    let offset = 0;
    while (offset < chunk.length) {
      if (this.state === DONE) {
        this.trailingBytes = true;
        return;
      }
      const next = this.step(chunk, offset);
      if (next < 0) return;
      offset = next;
    }
  }

  /** Ends a body delimited by the connection close; returns false when the response is cut. */
  endOfInput(): boolean {
    if (this.state !== BODY_UNTIL_CLOSE) return this.state === DONE;
    this.state = DONE;
    return true;
  }

  /** Runs the current state on `chunk` from `offset`; returns the next offset, or -1 to stop. */
  private step(chunk: Buffer, offset: number): number {
    switch (this.state) {
      case HEAD:
        return this.readHead(chunk, offset);
      case BODY_LENGTH:
        return this.readLengthBody(chunk, offset, BODY_LENGTH);
      case CHUNK_DATA:
        return this.readLengthBody(chunk, offset, CHUNK_DATA);
      case BODY_UNTIL_CLOSE:
        return this.sink.onResponseBody(offset === 0 ? chunk : chunk.subarray(offset))
          ? chunk.length
          : -1;
      default:
        return this.readLine(chunk, offset);
    }
  }

  private readHead(chunk: Buffer, offset: number): number {
    const previous = this.pending;
    const data = previous === null ? chunk.subarray(offset) : Buffer.concat([previous, chunk]);
    const base = previous === null ? offset : -previous.length;
    const end = data.indexOf(CRLF_CRLF, previous === null ? 0 : Math.max(0, previous.length - 3));

    if (end === -1) {
      if (data.length > MAX_RESPONSE_HEAD_BYTES) throw invalidResponse('head too large');
      const from = previous === null ? 0 : previous.length;
      if (hasBareLineFeed(data, from)) throw invalidResponse('line ends without CR');
      // NOTE: a head that arrives in many small reads is copied once per read, which is
      // quadratic but bounded by MAX_RESPONSE_HEAD_BYTES.
      // A head's first piece is a view of the connection's read buffer, which the next read
      // overwrites: it is kept as a copy.
      this.pending = previous === null ? Buffer.from(data) : data;
      return -1;
    }
    if (end + 4 > MAX_RESPONSE_HEAD_BYTES) throw invalidResponse('head too large');
    this.pending = null;

    const head = parseHead(data.toString('latin1', 0, end));
    const next = base + end + 4;
    if (head.status < 200) return next;
    return this.beginBody(head) ? next : -1;
  }

  /** Chooses the body framing of a final head, passes the head on; false stops parsing. */
  private beginBody(head: ParsedHead): boolean {
    this.head = head;
    const status = head.status;
    if (this.headOnly || status === 204 || status === 304) {
      this.state = DONE;
    } else if (head.chunked) {
      this.state = CHUNK_SIZE;
    } else if (head.contentLength >= 0) {
      this.remaining = head.contentLength;
      this.state = head.contentLength === 0 ? DONE : BODY_LENGTH;
    } else {
      head.keepAlive = false;
      this.state = BODY_UNTIL_CLOSE;
    }
    return this.sink.onResponseHead(head);
  }

  private readLengthBody(chunk: Buffer, offset: number, state: number): number {
    const available = chunk.length - offset;
    const take = available < this.remaining ? available : this.remaining;
    const end = offset + take;
    this.remaining -= take;
    if (this.remaining === 0) this.state = state === BODY_LENGTH ? DONE : CHUNK_DATA_END;

    const data = offset === 0 && end === chunk.length ? chunk : chunk.subarray(offset, end);
    return this.sink.onResponseBody(data) ? end : -1;
  }

  /** Reads one CRLF-terminated line of the chunked framing, which may span reads. */
  private readLine(chunk: Buffer, offset: number): number {
    const newline = chunk.indexOf(LF, offset);
    const end = newline === -1 ? chunk.length : newline;
    this.line += chunk.toString('latin1', offset, end);
    if (this.line.length > MAX_CHUNK_LINE_BYTES) throw invalidResponse('chunk line too long');
    if (newline === -1) return chunk.length;

    const line = this.line;
    this.line = '';
    if (line.charCodeAt(line.length - 1) !== CR) throw invalidResponse('line ends without CR');
    this.takeLine(line.slice(0, -1));
    return newline + 1;
  }

  private takeLine(line: string): void {
    if (line.includes('\r')) throw invalidResponse('CR inside a chunk line');
    if (this.state === CHUNK_DATA_END) {
      if (line !== '') throw invalidResponse('chunk data longer than its size');
      this.state = CHUNK_SIZE;
    } else if (this.state === CHUNK_SIZE) {
      const size = chunkSize(line);
      this.remaining = size;
      this.state = size === 0 ? TRAILERS : CHUNK_DATA;
    } else if (line === '') {
      this.state = DONE;
    } else {
      // Trailer fields are read and dropped, as the client gets its own chunked framing.
      this.trailerBytes += line.length + 2;
      if (this.trailerBytes > MAX_RESPONSE_HEAD_BYTES) throw invalidResponse('trailers too large');
    }
  }
}

// eslint-disable-next-line no-control-regex -- the pattern exists to find control characters
const CHUNK_SIZE_LINE = /^([0-9A-Fa-f]{1,16})(?:[ \t]*;[^\x00-\x08\x0a-\x1f\x7f]*)?$/;

function chunkSize(line: string): number {
  const match = CHUNK_SIZE_LINE.exec(line);
  if (match === null) throw invalidResponse('malformed chunk size');
  const size = Number.parseInt(match[1]!, 16);
  if (size > Number.MAX_SAFE_INTEGER) throw invalidResponse('chunk size too large');
  return size;
}

/** True when a LF at or after `from` is not preceded by CR. */
function hasBareLineFeed(data: Buffer, from: number): boolean {
  let index = data.indexOf(LF, from);
  while (index !== -1) {
    if (index === 0 || data[index - 1] !== CR) return true;
    index = data.indexOf(LF, index + 1);
  }
  return false;
}
