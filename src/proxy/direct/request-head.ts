/**
 * The request-head reader of the direct data path. It accepts a strict subset of HTTP/1.1: a
 * complete head in a method the direct path forwards, with only plain header lines and at most
 * one Content-Length of up to MAX_DIRECT_BODY_BYTES. Anything else, valid or not, is left to
 * Node's HTTP server, which owns the connection from then on and applies its own parser's rules.
 */

import { equalsLower, hasToken } from '../ascii.ts';
import { BUFFERED_BODY_MAX_BYTES } from '../forwarder.ts';

/** Largest head the direct path reads; Node's default `maxHeaderSize`, so the limits agree. */
export const MAX_HEAD_BYTES = 16 * 1024;

/**
 * Largest request body the direct path forwards: the size the forwarder reads whole before it
 * sends it, so both paths treat a body alike.
 */
export const MAX_DIRECT_BODY_BYTES = BUFFERED_BODY_MAX_BYTES;

/** Methods the direct path forwards. */
const DIRECT_METHODS = new Set(['GET', 'HEAD', 'DELETE', 'OPTIONS', 'POST', 'PUT', 'PATCH']);

const HTTP11 = ' HTTP/1.1';

/** A request head read by `readRequestHead`. */
export interface DirectRequestHead {
  method: string;
  /** Request target exactly as sent. */
  url: string;
  /** Flat [name, value, ...] list like Node's `rawHeaders`: names as sent, values trimmed. */
  rawHeaders: string[];
  /** The client asked to close the connection after this response (`Connection: close`). */
  close: boolean;
  /** Offset just past the blank line that ends the head, where the body starts. */
  end: number;
  /** Body length from Content-Length; 0 without one. */
  bodyLength: number;
  /** A Content-Length line was read; a second one is left to Node. */
  hasLength: boolean;
}

/** `readRequestHead` found no complete head at the offset. */
export const INCOMPLETE = 0;
/** The head is outside what the direct path reads: Node's server takes the connection. */
export const NOT_DIRECT = 1;

/**
 * Reads the request head starting at `start`. Returns INCOMPLETE when its end has not arrived
 * and NOT_DIRECT for anything the direct path leaves to Node: another version or method, a
 * chunked or larger body, Upgrade, Expect, folded or malformed lines, control characters, or a
 * head over MAX_HEAD_BYTES. The body is not checked here: the caller waits for `bodyLength` bytes
 * after `end`.
 */
export function readRequestHead(
  buffer: Buffer,
  start: number,
): DirectRequestHead | typeof INCOMPLETE | typeof NOT_DIRECT {
  const blank = buffer.indexOf('\r\n\r\n', start, 'latin1');
  if (blank === -1) return buffer.length - start > MAX_HEAD_BYTES ? NOT_DIRECT : INCOMPLETE;
  if (blank - start > MAX_HEAD_BYTES) return NOT_DIRECT;

  const text = buffer.toString('latin1', start, blank);
  const lineEnd = text.indexOf('\r\n');
  const requestLine = lineEnd === -1 ? text : text.slice(0, lineEnd);
  const firstSpace = requestLine.indexOf(' ');
  if (firstSpace <= 0 || !requestLine.endsWith(HTTP11)) return NOT_DIRECT;
  const method = requestLine.slice(0, firstSpace);
  const url = requestLine.slice(firstSpace + 1, requestLine.length - HTTP11.length);
  if (!DIRECT_METHODS.has(method) || !isTarget(url)) return NOT_DIRECT;

  const head: DirectRequestHead = {
    method,
    url,
    rawHeaders: [],
    close: false,
    end: blank + 4,
    bodyLength: 0,
    hasLength: false,
  };
  if (lineEnd !== -1 && !readHeaderLines(text, lineEnd + 2, head)) return NOT_DIRECT;
  return head;
}

/** Reads `name: value` lines from `from` to the end of `text`; false for anything unusual. */
function readHeaderLines(text: string, from: number, head: DirectRequestHead): boolean {
  let position = from;
  while (position <= text.length) {
    let next = text.indexOf('\r\n', position);
    if (next === -1) next = text.length;
    const colon = text.indexOf(':', position);
    if (colon <= position || colon >= next) return false;

    const name = text.slice(position, colon);
    if (!isToken(name)) return false;
    const value = trimValue(text, colon + 1, next);
    if (value === undefined || !acceptHeader(name, value, head)) return false;
    head.rawHeaders.push(name, value);
    position = next + 2;
  }
  return true;
}

/**
 * Checks the headers that decide the framing. A chunked or large body, a second Content-Length,
 * Upgrade and Expect are left to Node's server.
 */
function acceptHeader(name: string, value: string, head: DirectRequestHead): boolean {
  switch (name.length) {
    case 6:
      return !equalsLower(name, 'expect');
    case 7:
      return !equalsLower(name, 'upgrade');
    case 10:
      if (equalsLower(name, 'connection') && hasToken(value, 'close')) head.close = true;
      return true;
    case 14:
      if (!equalsLower(name, 'content-length')) return true;
      if (head.hasLength) return false;
      head.hasLength = true;
      head.bodyLength = lengthOf(value);
      return head.bodyLength >= 0;
    case 17:
      return !equalsLower(name, 'transfer-encoding');
    default:
      return true;
  }
}

/**
 * Returns the value between `from` and `to` without surrounding spaces and tabs, or undefined
 * when it contains a control character (a bare CR or LF among them).
 */
function trimValue(text: string, from: number, to: number): string | undefined {
  let first = from;
  let last = to;
  while (first < last && isBlank(text.charCodeAt(first))) first++;
  while (last > first && isBlank(text.charCodeAt(last - 1))) last--;
  for (let i = first; i < last; i++) {
    const code = text.charCodeAt(i);
    if ((code < 0x20 && code !== 0x09) || code === 0x7f) return undefined;
  }
  return text.slice(first, last);
}

/** Returns a Content-Length of 1 to 5 digits up to MAX_DIRECT_BODY_BYTES, else -1. */
function lengthOf(value: string): number {
  if (value.length === 0 || value.length > 5) return -1;
  let length = 0;
  for (let i = 0; i < value.length; i++) {
    const digit = value.charCodeAt(i) - 0x30;
    if (digit < 0 || digit > 9) return -1;
    length = length * 10 + digit;
  }
  return length <= MAX_DIRECT_BODY_BYTES ? length : -1;
}

function isBlank(code: number): boolean {
  return code === 0x20 || code === 0x09;
}

/** RFC 9110 token characters. */
function isToken(name: string): boolean {
  for (let i = 0; i < name.length; i++) {
    const code = name.charCodeAt(i);
    if (code > 0x7e || !TOKEN[code]) return false;
  }
  return name.length > 0;
}

/** A request target of visible ASCII characters; the site handler checks its form. */
function isTarget(url: string): boolean {
  if (url.length === 0) return false;
  for (let i = 0; i < url.length; i++) {
    const code = url.charCodeAt(i);
    if (code <= 0x20 || code >= 0x7f) return false;
  }
  return true;
}

const TOKEN: boolean[] = (() => {
  const table = new Array<boolean>(128).fill(false);
  const extra = "!#$%&'*+-.^_`|~";
  for (let code = 0; code < 128; code++) {
    const char = String.fromCharCode(code);
    table[code] = /[0-9A-Za-z]/.test(char) || extra.includes(char);
  }
  return table;
})();
