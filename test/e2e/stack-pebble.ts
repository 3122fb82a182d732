import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createSocket } from 'node:dgram';
import { readFile, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer, type AddressInfo } from 'node:net';
import path from 'node:path';
import { sh } from './stack-images.ts';

const READY_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 5_000;

/** Pebble reachable from containers: it listens on a Docker network's gateway address. */
export interface GatewayPebble {
  directoryUrl: string;
  /** Root of the certificates Pebble issues; new on every start. */
  rootCertificate(): Promise<string>;
  setAddress(host: string, address: string): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts pebble-challtestsrv (DNS) and Pebble for an edge that runs in a container: the ACME
 * directory listens on `gateway`, and Pebble validates HTTP-01 on port 80 of the address the
 * DNS gives for each name.
 */
export async function startGatewayPebble(
  dir: string,
  gateway: string,
  tls: PebbleTls,
): Promise<GatewayPebble> {
  const directoryPort = await freeTcpPort(gateway);
  const [managementPort, dnsManagementPort] = [
    await freeTcpPort('127.0.0.1'),
    await freeTcpPort('127.0.0.1'),
  ];
  const dnsPort = await freeUdpPort();
  const config = path.join(dir, 'pebble.json');
  await writeFile(
    config,
    JSON.stringify({
      pebble: {
        listenAddress: `${gateway}:${directoryPort}`,
        managementListenAddress: `127.0.0.1:${managementPort}`,
        certificate: tls.cert,
        privateKey: tls.key,
        httpPort: 80,
        tlsPort: 5001,
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
      },
    }),
  );

  const children: ChildProcess[] = [];
  const stop = async () => {
    await Promise.all(children.map(stopChild));
  };
  try {
    children.push(
      startChild(
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
        path.join(dir, 'challtestsrv.log'),
      ),
    );
    children.push(
      startChild(
        'pebble',
        ['-config', config, '-dnsserver', `127.0.0.1:${dnsPort}`, '-strict=false'],
        path.join(dir, 'pebble.log'),
        {
          PEBBLE_VA_NOSLEEP: '1',
          PEBBLE_WFE_NONCEREJECT: '0',
          PEBBLE_AUTHZREUSE: '0',
        },
      ),
    );
    const ca = await readFile(tls.ca, 'utf8');
    const directoryUrl = `https://${gateway}:${directoryPort}/dir`;
    await waitFor(() => httpsText(directoryUrl, ca), 'pebble directory');
    await waitFor(
      () => postJson(dnsManagementPort, '/clear-a', { host: 'probe.test' }),
      'challtestsrv',
    );

    return {
      directoryUrl,
      rootCertificate: () => httpsText(`https://127.0.0.1:${managementPort}/roots/0`, ca),
      async setAddress(host, address) {
        // add-a appends to earlier records, so clear first.
        await postJson(dnsManagementPort, '/clear-a', { host });
        await postJson(dnsManagementPort, '/add-a', { host, addresses: [address] });
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

export interface PebbleTls {
  ca: string;
  cert: string;
  key: string;
}

/**
 * Makes a throwaway CA and Pebble's HTTPS certificate for `gateway`. Made before the stack
 * exists, because the edge container mounts the CA file when Compose creates it.
 */
export async function createPebbleTls(dir: string, gateway: string): Promise<PebbleTls> {
  const file = (name: string) => path.join(dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  await sh('openssl', [
    'req',
    '-x509',
    ...ec,
    '-keyout',
    file('ca.key'),
    '-out',
    file('ca.pem'),
    '-days',
    '2',
    '-subj',
    '/CN=e2e-pebble-tls-ca',
  ]);
  await sh('openssl', [
    'req',
    ...ec,
    '-keyout',
    file('key.pem'),
    '-out',
    file('pebble.csr'),
    '-subj',
    '/CN=pebble',
  ]);
  await writeFile(
    file('san.ext'),
    `subjectAltName=IP:${gateway},IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`,
  );
  await sh('openssl', [
    'x509',
    '-req',
    '-in',
    file('pebble.csr'),
    '-CA',
    file('ca.pem'),
    '-CAkey',
    file('ca.key'),
    '-CAcreateserial',
    '-out',
    file('cert.pem'),
    '-days',
    '2',
    '-extfile',
    file('san.ext'),
  ]);
  return { ca: file('ca.pem'), cert: file('cert.pem'), key: file('key.pem') };
}

function startChild(
  command: string,
  args: string[],
  log: string,
  env: Record<string, string> = {},
): ChildProcess {
  const child = spawn(command, args, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (chunk: Buffer) => {
    output += chunk.toString();
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  child.once('exit', () => void writeFile(log, output).catch(() => {}));
  return child;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}

async function waitFor(probe: () => Promise<unknown>, what: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    try {
      await probe();
      return;
    } catch (error) {
      if (Date.now() > deadline)
        throw new Error(`${what} not ready after ${READY_TIMEOUT_MS} ms: ${String(error)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

function httpsText(url: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { ca }, (res) => {
      let body = '';
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () =>
        res.statusCode === 200 ? resolve(body) : reject(new Error(`HTTP ${res.statusCode}`)),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

function postJson(port: number, pathname: string, body: unknown): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: pathname, method: 'POST' }, (res) => {
      res.resume();
      res.on('end', () =>
        res.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`)),
      );
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

async function freeTcpPort(host: string): Promise<number> {
  const server = createServer();
  server.listen(0, host);
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function freeUdpPort(): Promise<number> {
  const socket = createSocket('udp4');
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}
