import type { ServerResponse } from 'node:http';
import type { EdgeConfig } from '../config/schema.ts';
import type { EdgeApi, EdgeRequest } from '../edge-api.ts';
import { EdgeError, errorMessage } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { DeployAuth } from './auth.ts';
import { configuredService, parseDeployBody, parseRollbackBody } from './request.ts';
import { DeployRun, finalLine, type ProgressLine } from './run.ts';
import type { EdgeDeployService } from './service.ts';
import { signedContent, SIGNATURE_HEADER, TIMESTAMP_HEADER } from './signature.ts';
import type { DeployEntry } from './store.ts';

/** Deploy request bodies are a few hundred bytes; anything far larger is not a deploy. */
export const MAX_DEPLOY_BODY_BYTES = 16 * 1024;
const NDJSON = 'application/x-ndjson; charset=utf-8';

export interface DeployApiOptions {
  api: EdgeApi;
  config: EdgeConfig;
  auth: DeployAuth;
  deploys: EdgeDeployService;
  logger: Logger;
}

/**
 * Registers `POST /_edge/deploy`, `GET /_edge/deploy/:id`, `GET /_edge/deploys` and
 * `POST /_edge/rollback`. Every request is authenticated before anything touches Docker.
 */
export function registerDeployRoutes(options: DeployApiOptions): void {
  const { api } = options;
  api.add('POST', '/deploy', (request) => handle(options, request, postDeploy));
  api.add('POST', '/rollback', (request) => handle(options, request, postRollback));
  api.add('GET', '/deploy/:id', (request) => handle(options, request, getDeploy));
  api.add('GET', '/deploys', (request) => handle(options, request, listDeploys));
}

type Handler = (
  options: DeployApiOptions,
  request: EdgeRequest,
  body: string,
  environment: string,
) => Promise<void>;

async function handle(
  options: DeployApiOptions,
  request: EdgeRequest,
  handler: Handler,
): Promise<void> {
  const { auth } = options;
  try {
    // Checked before the rate limit and not counted as a failure: it is about the transport, and
    // a client sent to http:// by mistake must not lock itself out of HTTPS.
    if (!request.secure) {
      throw new EdgeError(
        'EDGE_DEPLOY_HTTPS_REQUIRED',
        'the deploy API is served over HTTPS only; use the https:// URL',
        { status: 403 },
      );
    }
    auth.checkRateLimit(request.clientAddress);
    const body = await readBody(request);
    const environment = authenticate(options, request, body);
    await handler(options, request, body, environment);
  } catch (error) {
    const edgeError = toEdgeError(error);
    const authFailure = edgeError.status === 401 || edgeError.status === 403;
    if (authFailure && edgeError.code !== 'EDGE_DEPLOY_HTTPS_REQUIRED') {
      auth.recordFailure(request.clientAddress);
    }
    options.logger.warn(
      {
        reqId: request.reqId,
        clientAddress: request.clientAddress,
        code: edgeError.code,
        err: edgeError.message,
        ...logOnlyContext(edgeError),
      },
      'deploy request rejected',
    );
    sendError(request.res, edgeError);
  }
}

/**
 * Verifies the signature and returns the environment whose secret signed the request. Nothing in
 * the body is read before, so an unsigned request learns nothing about services or environments.
 */
function authenticate(options: DeployApiOptions, request: EdgeRequest, body: string): string {
  const { req } = request;
  return options.auth.verify({
    clientAddress: request.clientAddress,
    timestamp: headerValue(req.headers[TIMESTAMP_HEADER]),
    signature: headerValue(req.headers[SIGNATURE_HEADER]),
    content: signedContent(req.method ?? 'GET', req.url ?? '', body),
  });
}

async function postDeploy(
  options: DeployApiOptions,
  request: EdgeRequest,
  body: string,
  environment: string,
): Promise<void> {
  const parsed = parseDeployBody(body, options.config);
  checkEnvironment(options.config, parsed.service, environment);
  await stream(request.res, await options.deploys.start(parsed));
}

async function postRollback(
  options: DeployApiOptions,
  request: EdgeRequest,
  body: string,
  environment: string,
): Promise<void> {
  const { service } = parseRollbackBody(body, options.config);
  checkEnvironment(options.config, service, environment);
  await stream(request.res, await options.deploys.startRollback(service));
}

async function getDeploy(
  options: DeployApiOptions,
  request: EdgeRequest,
  _body: string,
  environment: string,
): Promise<void> {
  const entry = options.deploys.find(request.params[0] ?? '');
  const visible =
    entry !== undefined && options.config.services[entry.service]?.environment === environment;
  if (!visible) {
    throw new EdgeError('EDGE_DEPLOY_NOT_FOUND', `deploy ${request.params[0]} not found`, {
      status: 404,
    });
  }
  sendJson(request.res, 200, entry);
}

async function listDeploys(
  options: DeployApiOptions,
  request: EdgeRequest,
  _body: string,
  environment: string,
): Promise<void> {
  const service = request.query.get('service') ?? undefined;
  const entries = options.deploys
    .history(service)
    .filter((entry) => options.config.services[entry.service]?.environment === environment);
  sendJson(request.res, 200, { deploys: entries });
}

function checkEnvironment(config: EdgeConfig, service: string, environment: string): void {
  const required = configuredService(config, service).environment;
  if (required === environment) return;
  throw new EdgeError(
    'EDGE_DEPLOY_WRONG_ENVIRONMENT',
    `the ${environment} deploy secret cannot deploy service ${service}, which belongs to environment ${required}`,
    { status: 403, context: { service, environment } },
  );
}

/**
 * Streams the deploy's progress as NDJSON with status 200: the outcome is in the last line
 * (`result`), because the status is sent before the deploy ends. A client that disconnects
 * does not stop the deploy.
 */
function stream(res: ServerResponse, deploy: DeployRun | DeployEntry): Promise<void> {
  const id = deploy instanceof DeployRun ? deploy.entry.id : deploy.id;
  res.writeHead(200, {
    'content-type': NDJSON,
    'cache-control': 'no-store',
    'x-edge-deploy-id': id,
  });
  if (!(deploy instanceof DeployRun)) {
    res.end(line(finalLine(deploy)));
    return Promise.resolve();
  }

  const unsubscribe = deploy.follow((progress) => {
    if (!res.writableEnded && !res.destroyed) res.write(line(progress));
  });
  res.on('close', unsubscribe);
  return deploy.whenFinished().then(() => {
    unsubscribe();
    if (!res.writableEnded) res.end();
  });
}

function line(progress: ProgressLine): string {
  return `${JSON.stringify(progress)}\n`;
}

function readBody(request: EdgeRequest): Promise<string> {
  const { req } = request;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_DEPLOY_BODY_BYTES) {
        reject(
          new EdgeError(
            'EDGE_DEPLOY_BODY_TOO_LARGE',
            `request body over ${MAX_DEPLOY_BODY_BYTES} bytes`,
            { status: 413 },
          ),
        );
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function toEdgeError(error: unknown): EdgeError {
  if (error instanceof EdgeError) return error;
  return new EdgeError('EDGE_DEPLOY_INTERNAL', errorMessage(error), { status: 500, cause: error });
}

function sendError(res: ServerResponse, error: EdgeError): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const headers: Record<string, string> = {};
  const retryAfter = error.context.retryAfterSeconds;
  if (typeof retryAfter === 'number') headers['retry-after'] = String(retryAfter);
  sendJson(
    res,
    error.status,
    { error: { code: error.code, message: error.message, ...publicContext(error) } },
    headers,
  );
}

/** Returns what the log may show beyond the response: why a signature was not accepted. */
function logOnlyContext(error: EdgeError): Record<string, unknown> {
  const reason = error.context.reason;
  return typeof reason === 'string' ? { reason } : {};
}

function publicContext(error: EdgeError): Record<string, unknown> {
  const deployId = error.context.deployId;
  return typeof deployId === 'string' ? { deployId } : {};
}

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}
