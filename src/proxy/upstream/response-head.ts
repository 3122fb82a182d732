import { EdgeError } from '../../errors.ts';

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

/** `HTTP/1.x NNN reason`, where the reason may be empty or missing. */
// eslint-disable-next-line no-control-regex -- the pattern exists to find control characters
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: [^\x00-\x08\x0a-\x1f\x7f]*)?$/;
/** A field name (RFC 9110 section 5.1 token) followed by the colon. */
const FIELD_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Control characters other than HTAB, which RFC 9110 section 5.5 excludes from field values. */
// eslint-disable-next-line no-control-regex -- the pattern exists to find control characters
const INVALID_VALUE_CHAR = /[\x00-\x08\x0a-\x1f\x7f]/;
const DIGITS = /^\d{1,15}$/;
const KEEP_ALIVE_TIMEOUT = /(?:^|[,;\s])timeout\s*=\s*(\d{1,9})/i;
const SWITCHING_PROTOCOLS = 101;

/**
 * Parses a response head without its final blank line. Rejects obs-fold, CR or control
 * characters in a line and invalid field names (RFC 9112 lets a recipient reject them). Also
 * rejects what could split or merge messages: conflicting Content-Length values, Content-Length
 * with Transfer-Encoding, and any transfer coding other than a single `chunked`.
 */
export function parseHead(text: string): ParsedHead {
  let lineEnd = text.indexOf('\r\n');
  if (lineEnd === -1) lineEnd = text.length;
  const statusLine = STATUS_LINE.exec(text.slice(0, lineEnd));
  if (statusLine === null) throw invalidResponse('malformed status line');
  const status = Number(statusLine[2]);
  if (status === SWITCHING_PROTOCOLS) throw invalidResponse('unrequested protocol switch');

  const head: ParsedHead = {
    status,
    headers: [],
    contentLength: -1,
    chunked: false,
    keepAlive: statusLine[1] === '1',
    keepAliveTimeoutMs: -1,
  };
  let transferEncodings = 0;

  while (lineEnd < text.length) {
    const start = lineEnd + 2;
    lineEnd = text.indexOf('\r\n', start);
    if (lineEnd === -1) lineEnd = text.length;
    const line = text.slice(start, lineEnd);

    const colon = line.indexOf(':');
    if (colon <= 0) throw invalidResponse('header line without a name');
    const name = line.slice(0, colon);
    if (!FIELD_NAME.test(name)) throw invalidResponse('invalid header name');
    const value = trimWhitespace(line, colon + 1);
    if (INVALID_VALUE_CHAR.test(value)) throw invalidResponse('control character in a header');

    if (readFramingHeader(head, name, value)) continue;
    if (name.length === 17 && name.toLowerCase() === 'transfer-encoding') {
      transferEncodings++;
      if (transferEncodings > 1 || value.toLowerCase() !== 'chunked')
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
 * Reads Content-Length, Connection and Keep-Alive into `head`. Returns true when the line must
 * not be kept: a repeated Content-Length with the same value.
 */
function readFramingHeader(head: ParsedHead, name: string, value: string): boolean {
  if (name.length === 14 && name.toLowerCase() === 'content-length') {
    if (!DIGITS.test(value)) throw invalidResponse('malformed Content-Length');
    const length = Number(value);
    if (head.contentLength === length) return true;
    if (head.contentLength !== -1) throw invalidResponse('conflicting Content-Length values');
    head.contentLength = length;
  } else if (name.length === 10) {
    const lower = name.toLowerCase();
    if (lower === 'connection' && hasToken(value, 'close')) head.keepAlive = false;
    if (lower === 'keep-alive') {
      const match = KEEP_ALIVE_TIMEOUT.exec(value);
      if (match !== null) head.keepAliveTimeoutMs = Number(match[1]) * 1_000;
    }
  }
  return false;
}

function hasToken(list: string, token: string): boolean {
  for (const item of list.split(',')) {
    if (item.trim().toLowerCase() === token) return true;
  }
  return false;
}

/** Strips spaces and tabs (RFC 9110 OWS) only; String.trim would also strip byte 0xA0. */
function trimWhitespace(line: string, from: number): string {
  let start = from;
  let end = line.length;
  while (start < end && isWhitespace(line.charCodeAt(start))) start++;
  while (end > start && isWhitespace(line.charCodeAt(end - 1))) end--;
  return line.slice(start, end);
}

function isWhitespace(code: number): boolean {
  return code === 0x20 || code === 0x09;
}
