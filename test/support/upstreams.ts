import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { Writable } from 'node:stream';
import tls from 'node:tls';
import { createSecureContext, type SecureContext } from 'node:tls';
import { parseConfig } from '../../src/config/load.ts';
import type { EdgeConfig, EdgeConfigInput } from '../../src/config/schema.ts';
import type { EdgeContext, NetworkGuard } from '../../src/context.ts';
import { EdgeApi } from '../../src/edge-api.ts';
import { createLogger } from '../../src/log.ts';
import { createProxyServers, type ProxyServers } from '../../src/proxy/server.ts';
import { TargetRegistry } from '../../src/targets/registry.ts';
import type { CertificateManager } from '../../src/tls/index.ts';
import type { SessionTickets } from '../../src/tls/session-tickets.ts';
import { createSelfSignedCertificate } from '../../src/tls/self-signed.ts';

/** A proxy under test on loopback ports, with its log lines collected. */
export interface TestEdge {
  context: EdgeContext;
  servers: ProxyServers;
  httpPort: number;
  httpsPort: number;
  /** Parsed JSON log lines, in order. */
  logs: Record<string, unknown>[];
  /** Pending ACME key authorizations served on port 80: `host token` → key authorization. */
  challenges: Map<string, string>;
  stop(): Promise<void>;
}

export interface TestEdgeOptions {
  networkGuard?: NetworkGuard;
  /** Replaces the self-signed test certificate manager. */
  certificates?: CertificateManager;
  /** Extra names on the self-signed certificate besides every site host. */
  extraNames?: string[];
  /** Sets the TLS 1.3 session tickets per handshake; OpenSSL's default without it. */
  sessionTickets?: SessionTickets;
}

/**
 * Starts the proxy alone (no Docker, deploys or ACME) on 127.0.0.1 port 0 for both listeners,
 * with a self-signed certificate for every site host and a challenge table for port 80.
 */
export async function startTestEdge(
  input: EdgeConfigInput,
  options: TestEdgeOptions = {},
): Promise<TestEdge> {
  const config = parseConfig({
    ...input,
    listen: { address: '127.0.0.1', httpPort: 0, httpsPort: 0, ...input.listen },
  });
  const logs: Record<string, unknown>[] = [];
  const logger = createLogger({ level: 'debug', destination: collector(logs) });
  const challenges = new Map<string, string>();
  const context: EdgeContext = {
    config,
    logger,
    targets: new TargetRegistry(),
    api: new EdgeApi(),
    certificates:
      options.certificates ??
      (await testCertificates(config, challenges, options.extraNames ?? [])),
    routeStats: [],
    startedAt: Date.now(),
    networkGuard: options.networkGuard,
    sessionTickets: options.sessionTickets,
  };
  const servers = await createProxyServers(context);
  await servers.listen();
  const ports = servers.ports();
  return {
    context,
    servers,
    httpPort: ports.http,
    httpsPort: ports.https,
    logs,
    challenges,
    stop: () => servers.close(0),
  };
}

/** Creates a certificate manager with one self-signed certificate for every site host. */
async function testCertificates(
  config: EdgeConfig,
  challenges: Map<string, string>,
  extraNames: string[],
): Promise<CertificateManager> {
  const names = [...config.sites.flatMap((site) => site.hosts), ...extraNames];
  const pem = await createSelfSignedCertificate(names);
  const context: SecureContext = createSecureContext(pem);
  return {
    async start() {},
    async stop() {},
    sniCallback: (_name, callback) => callback(null, context),
    defaultSecureContext: () => context,
    defaultCertificate: () => pem,
    challengeResponse: (host, token) => challenges.get(`${host} ${token}`),
    status: () => [],
    renewNow: () => Promise.reject(new Error('no ACME in proxy tests')),
  };
}

function collector(lines: Record<string, unknown>[]): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split('\n')) {
        if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      }
      callback();
    },
  });
}

/** A request an upstream received. */
export interface ReceivedRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
}

/** A Node HTTP upstream on 127.0.0.1 that records what it receives. */
export interface TestUpstream {
  server: http.Server;
  origin: string;
  port: number;
  requests: ReceivedRequest[];
  close(): Promise<void>;
}

export type UpstreamHandler = (
  req: http.IncomingMessage,
  res: http.ServerResponse,
  body: Buffer,
) => void;

/** Starts an upstream that reads each body, records the request, then calls `handler`. */
export async function startUpstream(
  handler: UpstreamHandler = (_req, res) => res.end('ok'),
  options: http.ServerOptions = {},
): Promise<TestUpstream> {
  const requests: ReceivedRequest[] = [];
  const server = http.createServer(options, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      requests.push({
        method: req.method!,
        url: req.url!,
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        body,
      });
      handler(req, res, body);
    });
  });
  return listenUpstream(server, requests);
}

/** Wraps an already built server (for example one with an `upgrade` listener). */
export async function listenUpstream(
  server: http.Server,
  requests: ReceivedRequest[] = [],
): Promise<TestUpstream> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    server,
    origin: `http://127.0.0.1:${port}`,
    port,
    requests,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A raw TCP upstream: `onConnection` gets each accepted socket. */
export interface RawUpstream {
  server: net.Server;
  origin: string;
  port: number;
  sockets: Set<net.Socket>;
  close(): Promise<void>;
}

export async function startRawUpstream(
  onConnection: (socket: net.Socket) => void,
  options: { allowHalfOpen?: boolean } = {},
): Promise<RawUpstream> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: options.allowHalfOpen ?? false }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    onConnection(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    server,
    origin: `http://127.0.0.1:${port}`,
    port,
    sockets,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Collects a raw request head (up to the blank line) from a socket. */
export function readHead(socket: net.Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (chunk: Buffer): void => {
      text += chunk.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end !== -1) {
        socket.off('data', onData);
        resolve(text.slice(0, end + 4));
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
  });
}

/** A response as a test client saw it. */
export interface TestResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface TestRequestOptions {
  method?: string;
  path?: string;
  /** Host header; also the TLS server name unless `servername` is given. */
  host?: string;
  servername?: string;
  headers?: Record<string, string | string[]>;
  body?: string | Buffer;
}

/** Sends one HTTPS request to the edge (certificate not verified) and reads the whole response. */
export function httpsRequest(
  port: number,
  options: TestRequestOptions = {},
): Promise<TestResponse> {
  const host = options.host ?? 'app.example.test';
  const servername = options.servername ?? host.replace(/:\d+$/, '');
  return collect(
    https.request({
      host: '127.0.0.1',
      port,
      method: options.method ?? 'GET',
      path: options.path ?? '/',
      servername: net.isIP(servername) ? undefined : servername,
      rejectUnauthorized: false,
      agent: false,
      headers: { host, ...options.headers },
    }),
    options.body,
  );
}

/** Sends one plain HTTP request (to the edge's port 80 listener or an upstream). */
export function httpRequest(port: number, options: TestRequestOptions = {}): Promise<TestResponse> {
  return collect(
    http.request({
      host: '127.0.0.1',
      port,
      method: options.method ?? 'GET',
      path: options.path ?? '/',
      agent: false,
      headers: { host: options.host ?? 'app.example.test', ...options.headers },
    }),
    options.body,
  );
}

function collect(
  request: http.ClientRequest,
  body: string | Buffer | undefined,
): Promise<TestResponse> {
  return new Promise((resolve, reject) => {
    request.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({
          status: res.statusCode!,
          headers: res.headers,
          body: Buffer.concat(chunks).toString(),
        }),
      );
      res.on('error', reject);
    });
    request.on('error', reject);
    request.end(body);
  });
}

export interface RawExchangeOptions {
  /** Connect with TLS, using this server name (none when empty). */
  tls?: { servername?: string };
  /** Stop reading after this long; the text read so far is returned. */
  timeoutMs?: number;
}

/** Writes raw bytes to the edge and returns everything read until the edge closes or the timeout. */
export function rawExchange(
  port: number,
  bytes: string | Buffer,
  options: RawExchangeOptions = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connectRaw(port, options.tls);
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(text);
    }, options.timeoutMs ?? 2_000);
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(text);
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      if (text !== '') resolve(text);
      else reject(error);
    });
    socket.write(bytes);
  });
}

const tcpSockets = new WeakMap<net.Socket, net.Socket>();

/** Opens a plain or TLS socket to the edge. */
export function connectRaw(port: number, tlsOptions?: { servername?: string }): net.Socket {
  const tcp = net.connect({ host: '127.0.0.1', port });
  if (tlsOptions === undefined) return tcp;
  const servername = tlsOptions.servername;
  const socket = tls.connect({
    socket: tcp,
    servername: servername === undefined || servername === '' ? undefined : servername,
    rejectUnauthorized: false,
  });
  tcpSockets.set(socket, tcp);
  return socket;
}

/** Closes a socket from connectRaw with a TCP reset (RST) instead of a FIN. */
export function resetSocket(socket: net.Socket): void {
  (tcpSockets.get(socket) ?? socket).resetAndDestroy();
  socket.destroy();
}

/** Status code of a raw response text, or 0 when there is none. */
export function statusOf(raw: string): number {
  const match = /^HTTP\/1\.[01] (\d{3})/.exec(raw);
  return match === null ? 0 : Number(match[1]);
}

/** Waits until `check` returns true, polling every 10 ms, or throws after `timeoutMs`. */
export async function waitUntil(
  check: () => boolean,
  timeoutMs = 2_000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(10);
  }
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Returns a one-site configuration: app.example.test (prod) sends every path to `origin`. */
export function oneSite(origin: string): EdgeConfigInput {
  return {
    sites: [
      { name: 'prod', hosts: ['app.example.test'], routes: [{ path: '/', upstream: origin }] },
    ],
  };
}

/** Returns a two-site configuration: app.example.test (prod) and staging.example.test. */
export function twoSites(
  appRoutes: unknown[],
  stagingRoutes: unknown[] = appRoutes,
): EdgeConfigInput {
  return {
    sites: [
      { name: 'prod', hosts: ['app.example.test'], routes: appRoutes },
      { name: 'staging', hosts: ['staging.example.test'], routes: stagingRoutes },
    ],
  } as EdgeConfigInput;
}
