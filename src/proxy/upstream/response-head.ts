import { EdgeError } from '../../errors.ts';
import { equalsLower, hasToken } from '../ascii.ts';

/** A response head as read from an upstream, with its framing facts. */
export interface ParsedHead {
  status: number;
  /** Flat [name, value, ...] list in arrival order, Latin-1 decoded (one character per byte). */
  headers: string[];
  /** Content-Length, or -1 when absent. */
  contentLength: number;
  /** Transfer-Encoding is `chunked`. */
  chunked: boolean;
  /** The connection may carry another request: HTTP/1.1 without `Connection: close`. */
  keepAlive: boolean;
  /** Idle timeout the upstream announced with `Keep-Alive: timeout=N`, in ms, or -1. */
  keepAliveTimeoutMs: number;
}

/** Returns the error for a response that breaks HTTP/1.1 framing or syntax. */
export function invalidResponse(reason: string): EdgeError {
  return new EdgeError('EDGE_UPSTREAM_INVALID_RESPONSE', `invalid upstream response: ${reason}`, {
    status: 502,
  });
}

const KEEP_ALIVE_TIMEOUT = /(?:^|[,;\s])timeout\s*=\s*(\d{1,9})/i;
const SWITCHING_PROTOCOLS = 101;
const MAX_CONTENT_LENGTH_DIGITS = 15;
const CR = 0x0d;
const LF = 0x0a;
const COLON = 0x3a;
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;
const SPACE = 0x20;
const TAB = 0x09;
const DEL = 0x7f;
/** Length of `HTTP/1.x NNN`, the status line without its reason. */
const STATUS_LINE_MIN = 12;

/** The characters of an RFC 9110 token (section 5.6.2), by code: field names are tokens. */
const TOKEN_CHARS = new Uint8Array(128);
for (const char of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
  TOKEN_CHARS[char.charCodeAt(0)] = 1;

/**
 * Parses a response head without its final blank line. Rejects obs-fold, CR or control
 * characters in a line and invalid field names (RFC 9112 lets a recipient reject them). Also
 * rejects what could split or merge messages: conflicting Content-Length values, Content-Length
 * with Transfer-Encoding, and any transfer coding other than a single `chunked`. It reads the
 * text by character codes and slices only the names and values it keeps, since it runs once for
 * every proxied response.
 */
export function parseHead(text: string): ParsedHead {
  let lineEnd = text.indexOf('\r\n');
  if (lineEnd === -1) lineEnd = text.length;
  const status = statusOf(text, lineEnd);
  if (status === SWITCHING_PROTOCOLS) throw invalidResponse('unrequested protocol switch');

  const head: ParsedHead = {
    status,
    headers: [],
    contentLength: -1,
    chunked: false,
    // statusOf has checked that the version is HTTP/1.0 or HTTP/1.1.
    keepAlive: text.charCodeAt(7) === DIGIT_0 + 1,
    keepAliveTimeoutMs: -1,
  };
  let transferEncodings = 0;
  const length = text.length;

  while (lineEnd < length) {
    const start = lineEnd + 2;
    const colon = nameEnd(text, start);
    let valueStart = colon + 1;
    while (valueStart < length && isWhitespace(text.charCodeAt(valueStart))) valueStart++;
    // The value runs to the next CRLF or the end; any other control character rejects the line.
    let valueEnd = valueStart;
    let i = valueStart;
    for (; i < length; i++) {
      const code = text.charCodeAt(i);
      if (code === CR && text.charCodeAt(i + 1) === LF) break;
      if (isControl(code)) throw invalidResponse('control character in a header');
      if (!isWhitespace(code)) valueEnd = i + 1;
    }
    lineEnd = i;
    const name = text.slice(start, colon);
    const value = text.slice(valueStart, valueEnd);

    if (readFramingHeader(head, name, value)) continue;
    if (name.length === 17 && equalsLower(name, 'transfer-encoding')) {
      transferEncodings++;
      if (transferEncodings > 1 || !equalsLower(value, 'chunked'))
        throw invalidResponse('unsupported transfer coding');
      head.chunked = true;
    }
    head.headers.push(name, value);
  }

  if (head.chunked && head.contentLength !== -1)
    throw invalidResponse('both Content-Length and Transfer-Encoding');
  return head;
}

/**
 * Reads `HTTP/1.x NNN reason` in text[0, end): version 1.0 or 1.1, a status from 100 to 999, and
 * a reason that may be empty or missing but has no control character other than HTAB.
 */
function statusOf(text: string, end: number): number {
  const valid =
    end >= STATUS_LINE_MIN &&
    text.startsWith('HTTP/1.') &&
    (text.charCodeAt(7) === DIGIT_0 || text.charCodeAt(7) === DIGIT_0 + 1) &&
    text.charCodeAt(8) === SPACE &&
    text.charCodeAt(9) > DIGIT_0 &&
    isDigit(text.charCodeAt(9)) &&
    isDigit(text.charCodeAt(10)) &&
    isDigit(text.charCodeAt(11)) &&
    (end === STATUS_LINE_MIN || text.charCodeAt(STATUS_LINE_MIN) === SPACE);
  if (!valid) throw invalidResponse('malformed status line');
  for (let i = STATUS_LINE_MIN + 1; i < end; i++) {
    if (isControl(text.charCodeAt(i))) throw invalidResponse('malformed status line');
  }
  return (
    (text.charCodeAt(9) - DIGIT_0) * 100 +
    (text.charCodeAt(10) - DIGIT_0) * 10 +
    (text.charCodeAt(11) - DIGIT_0)
  );
}

/** Index of the colon that ends the field name of the line at `start`, checked as a token. */
function nameEnd(text: string, start: number): number {
  let i = start;
  for (; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === COLON) break;
    // The line is malformed either way; a line with no colon at all gets its own message.
    if (code >= 128 || TOKEN_CHARS[code] === 0) {
      let lineEnd = text.indexOf('\r\n', i);
      if (lineEnd === -1) lineEnd = text.length;
      const colon = text.indexOf(':', i);
      if (colon === -1 || colon >= lineEnd) throw invalidResponse('header line without a name');
      throw invalidResponse('invalid header name');
    }
  }
  if (i === text.length || i === start) throw invalidResponse('header line without a name');
  return i;
}

/**
 * Reads Content-Length, Connection and Keep-Alive into `head`. Returns true when the line must
 * not be kept: a repeated Content-Length with the same value.
 */
function readFramingHeader(head: ParsedHead, name: string, value: string): boolean {
  if (name.length === 14 && equalsLower(name, 'content-length')) {
    const length = contentLengthOf(value);
    if (head.contentLength === length) return true;
    if (head.contentLength !== -1) throw invalidResponse('conflicting Content-Length values');
    head.contentLength = length;
  } else if (name.length === 10) {
    if (equalsLower(name, 'connection')) {
      if (hasToken(value, 'close')) head.keepAlive = false;
    } else if (equalsLower(name, 'keep-alive')) {
      const match = KEEP_ALIVE_TIMEOUT.exec(value);
      if (match !== null) head.keepAliveTimeoutMs = Number(match[1]) * 1_000;
    }
  }
  return false;
}

/** Reads a Content-Length value, which must be 1 to 15 decimal digits and nothing else. */
function contentLengthOf(value: string): number {
  if (value.length === 0 || value.length > MAX_CONTENT_LENGTH_DIGITS)
    throw invalidResponse('malformed Content-Length');
  let length = 0;
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (!isDigit(code)) throw invalidResponse('malformed Content-Length');
    length = length * 10 + (code - DIGIT_0);
  }
  return length;
}

function isDigit(code: number): boolean {
  return code >= DIGIT_0 && code <= DIGIT_9;
}

/** Control characters other than HTAB, which RFC 9110 section 5.5 excludes from field values. */
function isControl(code: number): boolean {
  return (code < SPACE && code !== TAB) || code === DEL;
}

function isWhitespace(code: number): boolean {
  return code === SPACE || code === TAB;
}
