import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { writeFileSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const LOOPBACK = '127.0.0.1';
const DEFAULT_READY_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 5_000;
/** Names in Pebble's own HTTPS certificate unless the caller asks for others. */
const LOOPBACK_SUBJECT_ALT_NAME = 'DNS:localhost,IP:127.0.0.1';

export interface PebbleOptions {
  /** Port Pebble sends every HTTP-01 validation to: the edge's HTTP port in the test. */
  httpPort: number;
  /** Lifetime of issued certificates; Pebble's default is five years. */
  validitySeconds?: number;
  /** Address the ACME directory listens on: loopback, or a Docker gateway for a container. */
  listenAddress?: string;
  /** Port of the ACME directory, a free port by default: a restart on the same port keeps its URL. */
  listenPort?: number;
  /** Port Pebble sends TLS-ALPN-01 validations to, a free loopback port by default. */
  tlsPort?: number;
  /** Pebble's HTTPS certificate when the caller made it earlier, otherwise made here. */
  tls?: PebbleTls;
  /** Folder for the config and the process logs (written on exit), a new temp folder by default. */
  dir?: string;
  /** How long Pebble and pebble-challtestsrv may take to answer, 15 s by default. */
  readyTimeoutMs?: number;
}

export interface PebbleTls {
  ca: string;
  cert: string;
  key: string;
}

export interface Pebble {
  directoryUrl: string;
  /** PEM file of the CA that signed Pebble's own HTTPS certificate. */
  caBundlePath: string;
  /** Pebble's root for issued certificates (regenerated on every start). */
  rootCertificate(): Promise<string>;
  /** New orders Pebble has accepted since it started, read from its log. */
  orderCount(): number;
  /** Makes `host` resolve to `address` only (the default record is 127.0.0.1). */
  setAddress(host: string, address: string): Promise<void>;
  /** Restores the default record for `host`. */
  clearAddress(host: string): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts pebble-challtestsrv (DNS only, every name resolves to 127.0.0.1) and Pebble on free
 * ports (loopback, except the directory on `listenAddress`), with no random validation delay,
 * no fake nonce errors and no authorization reuse. Throws when a binary is missing: tests
 * never skip.
 */
export async function startPebble(options: PebbleOptions): Promise<Pebble> {
  const folder = options.dir ?? (await mkdtemp(join(tmpdir(), 'edge-pebble-')));
  const tlsFiles = options.tls ?? (await createPebbleTls(folder));
  const listenAddress = options.listenAddress ?? LOOPBACK;
  const readyTimeoutMs = options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
  const [freeListenPort, managementPort, freeTlsPort, dnsManagementPort] = (await freePortsOn([
    listenAddress,
    LOOPBACK,
    LOOPBACK,
    LOOPBACK,
  ])) as [number, number, number, number];
  const listenPort = options.listenPort ?? freeListenPort;
  const dnsPort = await freeUdpPort();

  const configPath = join(folder, 'pebble-config.json');
  await writeFile(
    configPath,
    JSON.stringify({
      pebble: {
        listenAddress: `${listenAddress}:${listenPort}`,
        managementListenAddress: `127.0.0.1:${managementPort}`,
        certificate: tlsFiles.cert,
        privateKey: tlsFiles.key,
        httpPort: options.httpPort,
        tlsPort: options.tlsPort ?? freeTlsPort,
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
        ...(options.validitySeconds === undefined
          ? {}
          : { certificateValidityPeriod: options.validitySeconds }),
      },
    }),
  );

  const children: ChildProcess[] = [];
  const stopAll = () => Promise.all(children.map((child) => stopChild(child)));
  const killOnExit = () => children.forEach((child) => child.kill('SIGKILL'));
  process.once('exit', killOnExit);

  try {
    const dns = startChild(
      'pebble-challtestsrv',
      [
        '-defaultIPv4',
        '127.0.0.1',
        '-defaultIPv6',
        '',
        '-dns01',
        `127.0.0.1:${dnsPort}`,
        '-management',
        `127.0.0.1:${dnsManagementPort}`,
        '-http01',
        '',
        '-https01',
        '',
        '-tlsalpn01',
        '',
      ],
      join(folder, 'challtestsrv.log'),
    );
    children.push(dns.child);
    const pebble = startChild(
      'pebble',
      ['-config', configPath, '-dnsserver', `127.0.0.1:${dnsPort}`, '-strict=false'],
      join(folder, 'pebble.log'),
      { PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0', PEBBLE_AUTHZREUSE: '0' },
    );
    children.push(pebble.child);

    const ca = await readFile(tlsFiles.ca, 'utf8');
    const directoryUrl = `https://${listenAddress}:${listenPort}/dir`;
    await waitUntil(
      () => fetchText(directoryUrl, ca).then(() => true),
      'pebble',
      pebble.output,
      readyTimeoutMs,
    );
    await waitUntil(
      () => postJson(dnsManagementPort, '/clear-a', { host: 'probe.test' }).then(() => true),
      'pebble-challtestsrv',
      dns.output,
      readyTimeoutMs,
    );

    return {
      directoryUrl,
      caBundlePath: tlsFiles.ca,
      rootCertificate: () => fetchText(`https://127.0.0.1:${managementPort}/roots/0`, ca),
      orderCount: () => (pebble.output().match(/Added order/g) ?? []).length,
      async setAddress(host, address) {
        // add-a appends to earlier records, so clear first.
        await postJson(dnsManagementPort, '/clear-a', { host });
        await postJson(dnsManagementPort, '/add-a', { host, addresses: [address] });
      },
      clearAddress: (host) => postJson(dnsManagementPort, '/clear-a', { host }),
      async stop() {
        process.removeListener('exit', killOnExit);
        await stopAll();
      },
    };
  } catch (error) {
    process.removeListener('exit', killOnExit);
    await stopAll();
    throw error;
  }
}

/**
 * Makes a throwaway CA and Pebble's HTTPS certificate for `subjectAltName` (by default
 * localhost and 127.0.0.1) signed by it, with openssl.
 */
export async function createPebbleTls(
  folder: string,
  subjectAltName = LOOPBACK_SUBJECT_ALT_NAME,
): Promise<PebbleTls> {
  const path = (name: string) => join(folder, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

  await run('openssl', [
    'req',
    '-x509',
    ...ec,
    '-keyout',
    path('ca.key'),
    '-out',
    path('ca.pem'),
    '-days',
    '2',
    '-subj',
    '/CN=edge test pebble tls ca',
  ]);
  await run('openssl', [
    'req',
    ...ec,
    '-keyout',
    path('pebble.key'),
    '-out',
    path('pebble.csr'),
    '-subj',
    '/CN=localhost',
  ]);
  await writeFile(
    path('san.ext'),
    `subjectAltName=${subjectAltName}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`,
  );
  await run('openssl', [
    'x509',
    '-req',
    '-in',
    path('pebble.csr'),
    '-CA',
    path('ca.pem'),
    '-CAkey',
    path('ca.key'),
    '-CAcreateserial',
    '-out',
    path('pebble.pem'),
    '-days',
    '2',
    '-extfile',
    path('san.ext'),
  ]);

  return { ca: path('ca.pem'), cert: path('pebble.pem'), key: path('pebble.key') };
}

/** Spawns `command`, keeps its output in memory and writes it to `logFile` when it exits. */
function startChild(
  command: string,
  args: string[],
  logFile: string,
  env: Record<string, string> = {},
): { child: ChildProcess; output: () => string } {
  const child = spawn(command, args, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const append = (chunk: Buffer) => (output += chunk.toString());
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  child.on('error', (error) => (output += `\nspawn ${command}: ${error.message}`));
  // Written synchronously, so the file exists before anyone awaiting the exit removes the folder.
  child.once('exit', () => {
    try {
      writeFileSync(logFile, output);
    } catch {
      // The folder is already gone: the log is only for reading after a failed run.
    }
  });
  return { child, output: () => output };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;

  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}

async function waitUntil(
  probe: () => Promise<boolean>,
  what: string,
  output: () => string,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe().catch(() => false)) return;
    if (output().includes('spawn ')) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`${what} did not become ready:\n${output()}`);
}

function fetchText(url: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const request = httpsRequest(url, { ca }, (response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk.toString()));
      response.on('end', () =>
        response.statusCode === 200
          ? resolve(body)
          : reject(new Error(`GET ${url}: ${response.statusCode}`)),
      );
    });
    request.on('error', reject);
    request.end();
  });
}

function postJson(port: number, path: string, body: unknown): Promise<void> {
  return new Promise((resolve, reject) => {
    const request = httpRequest({ host: '127.0.0.1', port, path, method: 'POST' }, (response) => {
      response.resume();
      response.on('end', () =>
        response.statusCode === 200
          ? resolve()
          : reject(new Error(`POST ${path}: ${response.statusCode}`)),
      );
    });
    request.on('error', reject);
    request.end(JSON.stringify(body));
  });
}

/** Ports free right now; a small race with other processes remains and is accepted in tests. */
export function freeTcpPorts(count: number): Promise<number[]> {
  return freePortsOn(Array.from({ length: count }, () => LOOPBACK));
}

/** One free port on each address, all held at once so that ports on one address differ. */
async function freePortsOn(addresses: string[]): Promise<number[]> {
  const servers = await Promise.all(
    addresses.map(
      (address) =>
        new Promise<ReturnType<typeof createServer>>((resolve) => {
          const server = createServer();
          server.listen(0, address, () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((server) => (server.address() as AddressInfo).port);
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}

async function freeUdpPort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}
