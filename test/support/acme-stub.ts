import {
  createServer as createHttpServer,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';

/** Response of the stub to a new order. */
export type OrderBehaviour =
  | { kind: 'rate-limited'; retryAfterSeconds: number }
  | { kind: 'challenge-invalid'; problemType: string; detail: string };

export interface AcmeStub {
  directoryUrl: string;
  /** Paths requested, in order, such as `POST /new-order`. */
  requests: string[];
  renewalInfoIds: string[];
  close(): Promise<void>;
}

export interface AcmeStubOptions {
  order: OrderBehaviour;
  /** Serve HTTPS with this key pair instead of plain HTTP. */
  tls?: { cert: string; key: string };
  /** Body and Retry-After of renewalInfo; the directory omits renewalInfo when absent. */
  renewalInfo?: { body: unknown; retryAfterSeconds?: number };
}

/**
 * A minimal ACME server on 127.0.0.1 for failure paths Pebble cannot produce on demand. It does
 * not check signatures and only returns responses in the shapes of RFC 8555.
 */
export async function startAcmeStub(options: AcmeStubOptions): Promise<AcmeStub> {
  const requests: string[] = [];
  const renewalInfoIds: string[] = [];
  let base = '';

  const handler = (request: IncomingMessage, response: ServerResponse) => {
    request.resume();
    request.on('end', () => {
      const path = new URL(request.url ?? '/', 'http://stub').pathname;
      requests.push(`${request.method} ${path}`);
      respond(path, response);
    });
  };

  const respond = (path: string, response: ServerResponse) => {
    response.setHeader('Replay-Nonce', `nonce-${requests.length}`);
    if (path === '/dir')
      return json(response, 200, directory(base, options.renewalInfo !== undefined));
    if (path === '/new-nonce') return response.writeHead(200).end();
    if (path === '/new-account') {
      response.setHeader('Location', `${base}/account/1`);
      return json(response, 201, { status: 'valid' });
    }
    if (path === '/new-order') return newOrder(response);
    if (path === '/authz/1') return json(response, 200, authorization(base));
    if (path === '/challenge/1') return challenge(response);
    if (path.startsWith('/renewal-info/') && options.renewalInfo !== undefined) {
      renewalInfoIds.push(path.slice('/renewal-info/'.length));
      const retryAfter = options.renewalInfo.retryAfterSeconds;
      if (retryAfter !== undefined) response.setHeader('Retry-After', String(retryAfter));
      return json(response, 200, options.renewalInfo.body);
    }
    return json(response, 404, {
      type: 'urn:ietf:params:acme:error:malformed',
      detail: 'not found',
    });
  };

  const newOrder = (response: ServerResponse) => {
    if (options.order.kind === 'rate-limited') {
      response.setHeader('Retry-After', String(options.order.retryAfterSeconds));
      return problem(
        response,
        429,
        'urn:ietf:params:acme:error:rateLimited',
        'too many new orders recently',
      );
    }
    response.setHeader('Location', `${base}/order/1`);
    return json(response, 201, {
      status: 'pending',
      identifiers: [{ type: 'dns', value: 'example.test' }],
      authorizations: [`${base}/authz/1`],
      finalize: `${base}/finalize/1`,
    });
  };

  const challenge = (response: ServerResponse) => {
    if (options.order.kind !== 'challenge-invalid') return json(response, 200, {});
    const { problemType, detail } = options.order;
    return json(response, 200, {
      type: 'http-01',
      url: `${base}/challenge/1`,
      token: 'tok123',
      status: 'invalid',
      error: { type: problemType, detail, status: 400 },
    });
  };

  const server =
    options.tls === undefined ? createHttpServer(handler) : createHttpsServer(options.tls, handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  base = `${options.tls === undefined ? 'http' : 'https'}://127.0.0.1:${port}`;

  return {
    directoryUrl: `${base}/dir`,
    requests,
    renewalInfoIds,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function directory(base: string, withRenewalInfo: boolean): Record<string, unknown> {
  return {
    newNonce: `${base}/new-nonce`,
    newAccount: `${base}/new-account`,
    newOrder: `${base}/new-order`,
    ...(withRenewalInfo ? { renewalInfo: `${base}/renewal-info` } : {}),
  };
}

function authorization(base: string): Record<string, unknown> {
  return {
    status: 'pending',
    identifier: { type: 'dns', value: 'example.test' },
    challenges: [
      { type: 'http-01', url: `${base}/challenge/1`, token: 'tok123', status: 'pending' },
    ],
  };
}

function json(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
}

function problem(response: ServerResponse, status: number, type: string, detail: string): void {
  response
    .writeHead(status, { 'Content-Type': 'application/problem+json' })
    .end(JSON.stringify({ type, detail, status }));
}
