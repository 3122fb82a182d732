import { randomBytes } from 'node:crypto';
import { equalsLower } from './ascii.ts';

/** Request ids accepted from clients; anything else is replaced by a generated one. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
/**
 * Random start of every request id this process generates. 64 random bits keep ids of different
 * processes and restarts apart, and a counter keeps this process's ids apart, at a fraction of
 * the cost of a random UUID per request.
 */
const REQUEST_ID_PREFIX = randomBytes(8).toString('hex');
let generatedRequestIds = 0;

/** Request facts the edge passes to the upstream in forwarding headers. */
export interface ForwardingFacts {
  /** TCP peer address. */
  peer: string;
  /** Peer is a configured trusted proxy, so its X-Forwarded-* values are kept and extended. */
  trusted: boolean;
  /** The client used TLS to reach the edge. */
  secure: boolean;
  /**
   * Host as the client sent it: the Host header, or the authority of an absolute-form target,
   * which replaces the Host header (RFC 9112 section 3.2.2).
   */
  host: string;
  reqId: string;
  /** Keep Upgrade and Connection (WebSocket handshakes). */
  upgrade: boolean;
}

/**
 * Builds the upstream request headers as a flat [name, value, ...] list from the client's raw
 * headers. Drops hop-by-hop headers (RFC 9110 section 7.6.1) and `Expect` (the edge answers
 * 100-continue itself), replaces or extends the forwarding headers, and keeps Host.
 */
export function upstreamRequestHeaders(raw: readonly string[], facts: ForwardingFacts): string[] {
  const out: string[] = ['host', facts.host];
  let forwardedFor = '';
  let forwardedProto = '';
  let forwardedHost = '';
  let realIp = '';
  let connectionTokens: string | undefined;

  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    const drop = classifyRequestHeader(name);

    // Host lines are skipped: the list starts with facts.host.
    if (drop === KEEP) {
      // Django, Rack and PHP read `_` and `-` in header names as the same character, so
      // `X_Forwarded_Proto` would pass for the edge's own header. nginx drops such names too.
      if (name.includes('_')) continue;
      out.push(name, value);
    } else if (drop === CONNECTION) {
      connectionTokens = connectionTokens === undefined ? value : `${connectionTokens},${value}`;
    } else if (drop === UPGRADE) {
      if (facts.upgrade) out.push(name, value);
    } else if (facts.trusted && drop !== HOST) {
      if (drop === XFF) forwardedFor = forwardedFor === '' ? value : `${forwardedFor}, ${value}`;
      else if (drop === XFP) forwardedProto ||= value;
      else if (drop === XFH) forwardedHost ||= value;
      else if (drop === REAL_IP) realIp ||= value;
      else if (drop === FORWARDED) out.push(name, value);
    }
  }

  // Headers the client named in Connection are filtered before the edge adds its own, so a
  // client cannot name X-Forwarded-For there to remove the value the edge sets.
  const headers =
    connectionTokens === undefined ? out : withoutConnectionOptions(out, connectionTokens);
  if (facts.upgrade) headers.push('connection', 'Upgrade');
  headers.push(
    'x-forwarded-for',
    forwardedFor === '' ? facts.peer : `${forwardedFor}, ${facts.peer}`,
    'x-forwarded-proto',
    forwardedProto || (facts.secure ? 'https' : 'http'),
    'x-forwarded-host',
    forwardedHost || facts.host,
    'x-real-ip',
    realIp || facts.peer,
    'x-request-id',
    facts.reqId,
  );
  return headers;
}

/** Facts about a request head gathered in one pass over its raw headers. */
export interface RequestHead {
  /** The first Host header value, or undefined when missing. */
  hostHeader: string | undefined;
  /** Number of Host lines; more than one makes the request invalid. */
  hostCount: number;
  /** Body length from Content-Length, -1 for a chunked body, 0 for none. */
  bodyLength: number;
  /** X-Request-Id from the client when it is a plain token. */
  requestId: string | undefined;
  /**
   * Transfer-Encoding is something other than one `chunked`, such as `gzip, chunked`. The edge
   * would forward the decoded chunks without the other coding, so such requests are rejected.
   */
  unsupportedCoding: boolean;
}

/** Creates a RequestHead with no header scanned yet. */
export function emptyRequestHead(): RequestHead {
  return {
    hostHeader: undefined,
    hostCount: 0,
    bodyLength: 0,
    requestId: undefined,
    unsupportedCoding: false,
  };
}

/**
 * Scans raw request headers once for Host, body framing and X-Request-Id. A caller may pass its
 * own object with the fields of `emptyRequestHead` to have it filled instead of a new one.
 */
export function scanRequestHead(
  raw: readonly string[],
  head: RequestHead = emptyRequestHead(),
): RequestHead {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    switch (name.length) {
      case 4:
        if (equalsLower(name, 'host')) {
          head.hostCount++;
          head.hostHeader ??= raw[i + 1]!;
        }
        break;
      case 12:
        if (equalsLower(name, 'x-request-id') && REQUEST_ID.test(raw[i + 1]!))
          head.requestId = raw[i + 1]!;
        break;
      case 14:
        if (head.bodyLength === 0 && equalsLower(name, 'content-length')) {
          head.bodyLength = Number(raw[i + 1]!) || 0;
        }
        break;
      case 17:
        if (equalsLower(name, 'transfer-encoding')) {
          // A second Transfer-Encoding line adds codings to the first one.
          if (head.bodyLength === -1 || !isChunked(raw[i + 1]!)) head.unsupportedCoding = true;
          head.bodyLength = -1;
        }
        break;
    }
  }
  return head;
}

function isChunked(value: string): boolean {
  return value.length === 7 && equalsLower(value, 'chunked');
}

/**
 * Returns the client's request id when it sent a valid one, else a new id: the process's random
 * prefix, `-`, and a counter (`3f9c0d6e1a2b4c5d-42`).
 */
export function requestIdOf(head: RequestHead): string {
  return head.requestId ?? newRequestId();
}

/** Returns a request id unique to this process: its random prefix and a counter. */
export function newRequestId(): string {
  return `${REQUEST_ID_PREFIX}-${++generatedRequestIds}`;
}

/**
 * Converts upstream response headers (undici's raw Buffer list) to the flat string list for
 * `res.writeHead`, without hop-by-hop headers and the upstream's X-Request-Id. Latin-1 decoding
 * maps each byte to one character, and Node writes such a head as Latin-1, so the bytes leave as
 * they arrived. This holds only while the first body write is a Buffer. Node prepends the head to
 * a first string chunk and writes both in that chunk's encoding, which re-encodes bytes above 127
 * as UTF-8.
 */
export function clientResponseHeaders(
  raw: readonly Buffer[],
  reqId: string,
  hsts: string | undefined,
  status = 200,
): string[] {
  let out: string[] = [];
  let connection: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toString('latin1');
    if (isDroppedResponseHeader(name, hsts !== undefined, status)) {
      if (isConnection(name)) connection = joinTokens(connection, raw[i + 1]!.toString('latin1'));
      continue;
    }
    out.push(name, raw[i + 1]!.toString('latin1'));
  }
  if (connection !== undefined) out = withoutConnectionOptions(out, connection);
  out.push('x-request-id', reqId);
  if (hsts !== undefined) out.push('strict-transport-security', hsts);
  return out;
}

/** True for the Connection header's name, in any case. */
export function isConnection(name: string): boolean {
  return name.length === 10 && equalsLower(name, 'connection');
}

/** Adds the value of one more Connection line to the tokens read so far. */
export function joinTokens(tokens: string | undefined, value: string): string {
  return tokens === undefined ? value : `${tokens},${value}`;
}

const NO_CONTENT = 204;
const KEEP = 0;
const HOST = 1;
const CONNECTION = 2;
const UPGRADE = 3;
const HOP = 4;
const XFF = 5;
const XFP = 6;
const XFH = 7;
const REAL_IP = 8;
const FORWARDED = 9;
const OTHER_FORWARDING = 10;

/** Sorts a request header name into keep / special / drop. Length first, so most names cost one compare. */
function classifyRequestHeader(name: string): number {
  switch (name.length) {
    case 2:
      return equalsLower(name, 'te') ? HOP : KEEP;
    case 4:
      return equalsLower(name, 'host') ? HOST : KEEP;
    case 6:
      return equalsLower(name, 'expect') ? HOP : KEEP;
    case 7: {
      if (equalsLower(name, 'upgrade')) return UPGRADE;
      return equalsLower(name, 'trailer') ? HOP : KEEP;
    }
    case 9: {
      if (equalsLower(name, 'x-real-ip')) return REAL_IP;
      return equalsLower(name, 'forwarded') ? FORWARDED : KEEP;
    }
    case 10: {
      if (equalsLower(name, 'connection')) return CONNECTION;
      return equalsLower(name, 'keep-alive') ? HOP : KEEP;
    }
    case 12:
      return equalsLower(name, 'x-request-id') ? HOP : KEEP;
    case 15: {
      if (equalsLower(name, 'x-forwarded-for')) return XFF;
      return equalsLower(name, 'x-forwarded-ssl') ? OTHER_FORWARDING : KEEP;
    }
    case 16: {
      if (equalsLower(name, 'x-forwarded-host')) return XFH;
      if (equalsLower(name, 'x-forwarded-port')) return OTHER_FORWARDING;
      return equalsLower(name, 'proxy-connection') ? HOP : KEEP;
    }
    case 17: {
      if (equalsLower(name, 'x-forwarded-proto')) return XFP;
      return equalsLower(name, 'transfer-encoding') ? HOP : KEEP;
    }
    case 18:
      return equalsLower(name, 'x-forwarded-scheme') ? OTHER_FORWARDING : KEEP;
    default:
      return KEEP;
  }
}

/**
 * True for a response header the edge does not pass to the client: hop-by-hop headers, the
 * upstream's X-Request-Id, its HSTS header when the edge sets its own, and Content-Length on a
 * 204, which RFC 9110 section 8.6 forbids there.
 */
export function isDroppedResponseHeader(
  name: string,
  replaceHsts: boolean,
  status: number,
): boolean {
  switch (name.length) {
    case 14:
      return status === NO_CONTENT && equalsLower(name, 'content-length');
    case 7: {
      return equalsLower(name, 'upgrade') || equalsLower(name, 'trailer');
    }
    case 10: {
      return equalsLower(name, 'connection') || equalsLower(name, 'keep-alive');
    }
    case 12:
      return equalsLower(name, 'x-request-id');
    case 16:
      return equalsLower(name, 'proxy-connection');
    case 17:
      return equalsLower(name, 'transfer-encoding');
    case 25:
      return replaceHsts && equalsLower(name, 'strict-transport-security');
    default:
      return false;
  }
}

/** Connection tokens that are not header names to remove, or headers the edge must keep. */
const PROTECTED_OPTIONS = new Set(['close', 'keep-alive', 'upgrade', 'host', 'content-length']);

/**
 * Removes the headers named in a Connection header, which are meant for the next hop alone
 * (RFC 9110 section 7.6.1): a client's for the edge, an upstream's for the edge too.
 */
export function withoutConnectionOptions(headers: string[], tokens: string): string[] {
  const named = new Set<string>();
  for (const token of tokens.split(',')) {
    const lower = token.trim().toLowerCase();
    if (lower !== '' && !PROTECTED_OPTIONS.has(lower)) named.add(lower);
  }
  if (named.size === 0) return headers;

  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    if (!named.has(headers[i]!.toLowerCase())) out.push(headers[i]!, headers[i + 1]!);
  }
  return out;
}
