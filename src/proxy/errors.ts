import { STATUS_CODES, type ServerResponse } from 'node:http';

/** Logged as the status of a request whose client closed the connection first (as nginx does). */
export const CLIENT_CLOSED_STATUS = 499;

/** Reasons the edge responds to a request itself, each with one status and one page text. */
export const FAILURES = {
  badRequest: { status: 400, text: 'malformed request' },
  missingHost: { status: 400, text: 'missing or invalid Host header' },
  forbiddenNetwork: { status: 403, text: 'this site is not reachable from your network' },
  httpsRequired: { status: 403, text: 'the deploy API is served over HTTPS only' },
  websocketDisabled: { status: 403, text: 'WebSocket upgrades are disabled on this route' },
  notFound: { status: 404, text: 'not found' },
  methodNotAllowed: { status: 405, text: 'method not allowed' },
  requestTimeout: { status: 408, text: 'the request was not received in time' },
  tooLarge: { status: 413, text: 'request body too large' },
  misdirected: { status: 421, text: 'this server does not serve that host name' },
  headersTooLarge: { status: 431, text: 'request headers too large' },
  internal: { status: 500, text: 'internal error' },
  unsupportedCoding: { status: 501, text: 'transfer coding not supported' },
  badGateway: { status: 502, text: 'the upstream server failed to answer' },
  noTarget: { status: 503, text: 'service unavailable: no upstream is running' },
  gatewayTimeout: { status: 504, text: 'the upstream server did not answer in time' },
} as const;

export type FailureKind = keyof typeof FAILURES;

/** Upstream error codes that mean the upstream did not answer in time. */
const TIMEOUT_CODES = new Set([
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'ETIMEDOUT',
  'EDGE_UPSTREAM_TIMEOUT',
  'EDGE_UPSTREAM_CONNECT_TIMEOUT',
  'EDGE_UPSTREAM_BODY_TIMEOUT',
]);

/**
 * Errors a reused keep-alive socket shows when the upstream closed it as the request went out.
 * EDGE_UPSTREAM_CLOSED is the raw client's clean close (FIN) with no response.
 */
const STALE_SOCKET_CODES = new Set([
  'ECONNRESET',
  'EPIPE',
  'UND_ERR_SOCKET',
  'EDGE_UPSTREAM_CLOSED',
]);

/** Maps an upstream failure to 504 (timed out) or 502 (refused, reset, invalid response). */
export function upstreamFailure(error: unknown): FailureKind {
  const code = errorCode(error);
  if (code !== undefined && TIMEOUT_CODES.has(code)) return 'gatewayTimeout';
  return 'badGateway';
}

/** True for an error a retry on a fresh connection can fix. */
export function isStaleSocketError(error: unknown): boolean {
  const code = errorCode(error);
  return code !== undefined && STALE_SOCKET_CODES.has(code);
}

export function errorCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

const pages = new Map<FailureKind, Buffer>();

/** Returns the plain page of a failure: its status line and one sentence, nothing from the request. */
export function failurePage(kind: FailureKind): Buffer {
  let page = pages.get(kind);
  if (page === undefined) {
    const { status, text } = FAILURES[kind];
    page = Buffer.from(`${status} ${STATUS_CODES[status]}\n${text}\n`);
    pages.set(kind, page);
  }
  return page;
}

/**
 * Sends the page of `kind` on a response that has not started. `close` asks the client to open a
 * new connection, for answers sent before the request body was read.
 */
export function sendFailure(res: ServerResponse, kind: FailureKind, close = false): number {
  const { status } = FAILURES[kind];
  const page = failurePage(kind);
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.setHeader('Content-Length', page.length);
  res.setHeader('Cache-Control', 'no-store');
  if (close) res.setHeader('Connection', 'close');
  res.end(page);
  return status;
}

/** A complete HTTP/1.1 response with the page of `kind`, for sockets outside the HTTP server. */
export function rawFailureResponse(kind: FailureKind, extraHeaders = ''): string {
  const { status } = FAILURES[kind];
  const page = failurePage(kind);
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n` +
    'Content-Type: text/plain; charset=utf-8\r\n' +
    `Content-Length: ${page.length}\r\n` +
    `Cache-Control: no-store\r\nConnection: close\r\n${extraHeaders}\r\n${page.toString()}`
  );
}
