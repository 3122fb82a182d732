import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { parseArgs } from 'node:util';
import { errorMessage } from '../errors.ts';
import type { ProgressLine } from './run.ts';
import { sign, SIGNATURE_HEADER, TIMESTAMP_HEADER } from './signature.ts';

export const DEFAULT_SECRET_ENV = 'EDGE_DEPLOY_SECRET';
/** Time allowed to connect and receive the response head; the streamed body has no limit. */
export const CONNECT_TIMEOUT_MS = 30_000;

const USAGE = `usage: caliente-edge deploy --url URL --service NAME --image IMAGE [options]

Asks a running edge to deploy IMAGE as SERVICE and prints its progress. Exits 0 when the
deploy succeeded, 1 when it failed or the connection broke, 2 on a usage error.

options:
  --url URL               edge base URL, such as https://app.example.com
  --service NAME          service name under services in the edge config
  --image IMAGE           image to deploy: the service's repository with a tag or @sha256 digest
  --commit SHA            commit recorded with the deploy (default: $GITHUB_SHA)
  --ref REF               branch or tag recorded with the deploy (default: $GITHUB_REF_NAME)
  --idempotency-key KEY   retry-safe key: a repeat of the same deploy returns the earlier
                          deploy's result; the key used with another service or image fails
  --secret-env NAME       environment variable holding the deploy secret (default: ${DEFAULT_SECRET_ENV})
  --ca FILE               PEM file of CA certificates to trust instead of the system ones
  --json                  print the raw NDJSON progress lines
  --help                  show this text
`;

/** Output streams and environment of the command, the process's own by default. */
export interface CommandIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  env: NodeJS.ProcessEnv;
}

/** Runs `caliente-edge deploy`; resolves with the process exit code. */
export async function deployCommand(argv: string[], io: CommandIo = process): Promise<number> {
  let options: ReturnType<typeof parseOptions>;
  try {
    options = parseOptions(argv, io.env);
  } catch (error) {
    io.stderr.write(`caliente-edge deploy: ${errorMessage(error)}\n\n${USAGE}`);
    return 2;
  }
  if (options === 'help') {
    io.stdout.write(USAGE);
    return 0;
  }

  try {
    return await sendDeploy(options, io);
  } catch (error) {
    io.stderr.write(`caliente-edge deploy: ${errorMessage(error)}\n`);
    return 1;
  }
}

interface CliOptions {
  url: URL;
  body: string;
  secret: string;
  ca?: Buffer;
  json: boolean;
}

function parseOptions(argv: string[], env: NodeJS.ProcessEnv): CliOptions | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      url: { type: 'string' },
      service: { type: 'string' },
      image: { type: 'string' },
      commit: { type: 'string' },
      ref: { type: 'string' },
      'idempotency-key': { type: 'string' },
      'secret-env': { type: 'string' },
      ca: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) return 'help';
  for (const required of ['url', 'service', 'image'] as const) {
    if (!values[required]) throw new Error(`missing --${required}`);
  }

  const secretEnv = values['secret-env'] ?? DEFAULT_SECRET_ENV;
  const secret = env[secretEnv] ?? '';
  if (secret === '') throw new Error(`the deploy secret is missing: set ${secretEnv}`);

  const body = {
    service: values.service,
    image: values.image,
    commit: values.commit ?? (env.GITHUB_SHA || undefined),
    ref: values.ref ?? (env.GITHUB_REF_NAME || undefined),
    idempotencyKey: values['idempotency-key'],
  };
  return {
    url: deployUrl(values.url!),
    body: JSON.stringify(body),
    secret,
    ca: values.ca ? readCaFile(values.ca) : undefined,
    json: values.json ?? false,
  };
}

/**
 * Accepts the edge's base URL or the full deploy URL. Plain http:// is refused except for a
 * loopback address, because the signed request could be replayed by anyone who reads it.
 */
function deployUrl(text: string): URL {
  if (!URL.canParse(text))
    throw new Error(`--url must be an absolute URL such as https://app.example.com, got ${text}`);
  const url = new URL(text);
  const loopbackHttp = url.protocol === 'http:' && isLoopbackHost(url.hostname);
  if (url.protocol !== 'https:' && !loopbackHttp) {
    throw new Error(
      `--url must be https:// (plain http:// only for a loopback address), got ${text}`,
    );
  }
  if (!url.pathname.endsWith('/_edge/deploy'))
    url.pathname = `${url.pathname.replace(/\/+$/, '')}/_edge/deploy`;
  return url;
}

function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
}

/** Reads the --ca file and checks that it contains at least one PEM certificate. */
function readCaFile(file: string): Buffer {
  let content: Buffer;
  try {
    content = readFileSync(file);
  } catch (error) {
    throw new Error(`--ca ${file} cannot be read: ${errorMessage(error)}`);
  }
  if (!content.includes('-----BEGIN CERTIFICATE-----'))
    throw new Error(`--ca ${file} contains no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  return content;
}

/** Error codes of a server certificate the client does not trust. */
const UNTRUSTED_CERTIFICATE_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_HAS_EXPIRED',
]);

/** Adds what to do to a TLS trust failure, which Node reports as a bare phrase. */
function explainRequestError(error: Error): Error {
  const code = (error as NodeJS.ErrnoException).code ?? '';
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return new Error(
      `${error.message} (${code}): use a host name the edge's certificate names in --url`,
    );
  }
  if (!UNTRUSTED_CERTIFICATE_CODES.has(code)) return error;
  return new Error(
    `${error.message} (${code}): the edge's certificate is not trusted; pass the CA that ` +
      'signed it with --ca FILE, or wait until the edge has its ACME certificate',
  );
}

function sendDeploy(options: CliOptions, io: CommandIo): Promise<number> {
  const timestamp = String(Math.floor(Date.now() / 1000));
  const headers = {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(options.body),
    [TIMESTAMP_HEADER]: timestamp,
    [SIGNATURE_HEADER]: sign(options.secret, timestamp, options.body),
  };
  const transport = options.url.protocol === 'https:' ? https : http;

  return new Promise((resolve, reject) => {
    const request = transport.request(options.url, {
      method: 'POST',
      headers,
      ca: options.ca,
      timeout: CONNECT_TIMEOUT_MS,
    });
    request.on('timeout', () =>
      request.destroy(
        new Error(`no response from ${options.url.origin} within ${CONNECT_TIMEOUT_MS} ms`),
      ),
    );
    request.on('error', (error) => reject(explainRequestError(error)));
    request.on('response', (response) => {
      request.setTimeout(0);
      if (response.statusCode !== 200) {
        readAll(response).then(
          (text) => resolve(reportRejection(response.statusCode ?? 0, text, io)),
          reject,
        );
        return;
      }
      followProgress(response, options.json, io).then(resolve, reject);
    });
    request.end(options.body);
  });
}

async function followProgress(
  response: http.IncomingMessage,
  json: boolean,
  io: CommandIo,
): Promise<number> {
  let buffered = '';
  let result: ProgressLine | undefined;
  const id = response.headers['x-edge-deploy-id'];
  const cut = (reason: string) =>
    new Error(
      `the connection closed before the deploy finished (${reason}); its state is at GET /_edge/deploy/${id}`,
    );
  try {
    for await (const chunk of response) {
      buffered += (chunk as Buffer).toString();
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const text = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        if (text === '') continue;
        const line = JSON.parse(text) as ProgressLine;
        if ('result' in line) result = line;
        io.stdout.write(json ? `${text}\n` : `${formatLine(line)}\n`);
      }
    }
  } catch (error) {
    throw cut(errorMessage(error));
  }

  if (result === undefined || !('result' in result)) throw cut('no final line');
  return result.result === 'succeeded' ? 0 : 1;
}

/** Formats a progress line for a CI log: `pull ok (1.2 s): digest sha256:...`. */
export function formatLine(line: ProgressLine): string {
  if ('result' in line) {
    if (line.result === 'succeeded')
      return `deploy ${line.id} succeeded: ${line.image}${line.digest ? ` (${line.digest})` : ''}`;
    return `deploy ${line.id} failed at step ${line.failedStep}: ${line.error}`;
  }
  const duration =
    line.durationMs !== undefined ? ` (${(line.durationMs / 1000).toFixed(1)} s)` : '';
  return `${line.step} ${line.status}${duration}${line.message ? `: ${line.message}` : ''}`;
}

function reportRejection(status: number, text: string, io: CommandIo): number {
  let message = text.trim();
  try {
    const parsed = JSON.parse(text) as {
      error?: { code?: string; message?: string; deployId?: string };
    };
    if (parsed.error?.message) {
      message = `${parsed.error.message} (${parsed.error.code})`;
      if (parsed.error.deployId) message += `; running deploy: ${parsed.error.deployId}`;
    }
  } catch {
    // Not JSON (a proxy in between answered): print the body as it is.
  }
  io.stderr.write(
    `caliente-edge deploy: the edge rejected the deploy with HTTP ${status}: ${message}\n`,
  );
  return 1;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of stream) text += chunk.toString();
  return text;
}
