import type { IncomingMessage } from 'node:http';
import type { SiteConfig } from '../config/schema.ts';
import type { FailureKind } from './errors.ts';
import { requestIdOf, scanRequestHead, type RequestHead } from './headers.ts';
import { requestHost, type HostTable } from './host.ts';
import { parseRequestTarget } from './path.ts';
import { peerAddress } from './trusted.ts';

/**
 * A request as both listeners read it before they choose how to respond: its head facts,
 * target, host and site. It is the only object the edge allocates to route a request, and the
 * site handler completes it with its own checks.
 */
export interface SiteRequest extends RequestHead {
  reqId: string;
  /** Socket peer address. */
  client: string;
  /** The client reached the edge over TLS. */
  secure: boolean;
  /** Host as the client sent it: the Host header, or the authority of an absolute-form target. */
  host: string;
  /** `host` normalised (lower case, no port, no trailing dot); empty when invalid or missing. */
  hostName: string;
  /** Site of `hostName`, undefined for an unknown host. */
  site: SiteConfig | undefined;
  /** Raw path. */
  path: string;
  /** Raw query including its `?`, or empty. */
  query: string;
  /** Path used for routing, see normalisePath; set by the site handler. */
  normalised: string;
  failure: FailureKind | undefined;
}

/**
 * Reads the head, target and host of a request. A target that is not in origin or absolute form
 * and a missing, duplicate or invalid Host set `failure`. An unknown host only leaves `site`
 * undefined, because the plain HTTP listener serves ACME challenges for any host.
 */
export function readRequest(req: IncomingMessage, hosts: HostTable, secure: boolean): SiteRequest {
  return readRequestParts(req.url ?? '', req.rawHeaders, req.socket.remoteAddress, hosts, secure);
}

/**
 * Reads a request like `readRequest`, from a head read without Node's parser. Without `assignId`
 * the request id stays empty: the caller may still give the request to Node's server, which
 * reads it again, and each request gets one id only.
 */
export function readRequestParts(
  url: string,
  rawHeaders: readonly string[],
  remoteAddress: string | undefined,
  hosts: HostTable,
  secure: boolean,
  assignId = true,
): SiteRequest {
  const request: SiteRequest = {
    hostHeader: undefined,
    hostCount: 0,
    bodyLength: 0,
    requestId: undefined,
    unsupportedCoding: false,
    reqId: '',
    client: peerAddress(remoteAddress),
    secure,
    host: '',
    hostName: '',
    site: undefined,
    path: '',
    query: '',
    normalised: '',
    failure: undefined,
  };
  scanRequestHead(rawHeaders, request);
  if (assignId) request.reqId = requestIdOf(request);

  let authority: string | undefined;
  if (url.charCodeAt(0) === 47 /* / */) {
    // Origin form, nearly every request: split it here rather than build a target object.
    const mark = url.indexOf('?');
    request.path = mark === -1 ? url : url.slice(0, mark);
    request.query = mark === -1 ? '' : url.slice(mark);
  } else {
    const target = parseRequestTarget(url);
    if (target === undefined) return fail(request, 'badRequest');
    request.path = target.path;
    request.query = target.query;
    authority = target.authority;
  }

  const hostValue = requestHost(hosts, authority, request.hostCount, request.hostHeader);
  if (hostValue === undefined) return fail(request, 'missingHost');
  request.host = hostValue;

  const match = hosts.match(hostValue);
  if (match.kind === 'invalid') return fail(request, 'missingHost');
  request.hostName = match.host;
  if (match.kind === 'site') request.site = match.site;
  return request;
}

function fail(request: SiteRequest, failure: FailureKind): SiteRequest {
  request.failure = failure;
  return request;
}
