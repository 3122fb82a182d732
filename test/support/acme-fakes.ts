import { webcrypto } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import * as x509 from '@peculiar/x509';
import { configSchema, type EdgeConfig } from '../../src/config/schema.ts';
import { silentLogger, type Logger } from '../../src/log.ts';
import type { AcmeIssuer, IssueRequest, RenewalInfo } from '../../src/tls/issuer.ts';
import { createCertificateManager, type CertificateManager } from '../../src/tls/index.ts';
import type { PemKeyPair } from '../../src/tls/store.ts';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const ECDSA_P256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
export const DAY_MS = 24 * 60 * 60 * 1000;

/** A clock tests move by hand. */
export class FakeClock {
  constructor(public time = Date.now()) {}
  now = (): number => this.time;
  advance(ms: number): void {
    this.time += ms;
  }
}

/** Creates a leaf certificate with an authority key identifier, as a CA would issue it. */
export async function makeCertificate(
  names: string[],
  notBefore: number,
  notAfter: number,
): Promise<PemKeyPair> {
  const keys = await webcrypto.subtle.generateKey(ECDSA_P256, true, ['sign', 'verify']);
  const serial = Buffer.from(webcrypto.getRandomValues(new Uint8Array(8)));
  serial[0] = serial[0]! & 0x7f;

  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial.toString('hex'),
    name: `CN=${names[0]}`,
    notBefore: new Date(notBefore),
    notAfter: new Date(notAfter),
    signingAlgorithm: ECDSA_P256,
    keys: keys as CryptoKeyPair,
    extensions: [
      new x509.AuthorityKeyIdentifierExtension('69885b6b87464041e1b37b847ba0ae2cde01c8d4'),
      new x509.SubjectAlternativeNameExtension(
        names.map((value) => ({ type: 'dns' as const, value })),
      ),
    ],
  });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const key = `-----BEGIN PRIVATE KEY-----\n${pkcs8.toString('base64')}\n-----END PRIVATE KEY-----\n`;
  return { cert: cert.toString('pem'), key };
}

/** An issuer that never leaves the process: it counts orders and fails on request. */
export class FakeIssuer implements AcmeIssuer {
  readonly directoryUrl = 'https://acme.example.test/directory';
  readonly orders: IssueRequest[] = [];
  /** Errors thrown by the next orders, in turn. */
  readonly failures: Error[] = [];
  renewalWindow: RenewalInfo | undefined;
  renewalInfoRequests: string[] = [];
  /** Resolves the order running now; lets a test hold an order open. */
  gate: Promise<void> | undefined;

  constructor(
    private readonly clock: FakeClock,
    public validityMs = 90 * DAY_MS,
  ) {}

  async issue(request: IssueRequest): Promise<PemKeyPair> {
    this.orders.push(request);
    await this.gate;

    const failure = this.failures.shift();
    if (failure !== undefined) throw failure;

    const now = this.clock.now();
    return makeCertificate(request.names, now - 1000, now + this.validityMs);
  }

  async renewalInfo(certificateId: string): Promise<RenewalInfo | undefined> {
    this.renewalInfoRequests.push(certificateId);
    return this.renewalWindow;
  }
}

/** Returns a parsed config with one site per entry of `sites` and ACME on. */
export async function acmeConfig(
  sites: Record<string, string[]>,
  acme: Record<string, unknown> = {},
  certsDir?: string,
): Promise<EdgeConfig> {
  return configSchema.parse({
    certsDir: certsDir ?? (await mkdtemp(join(tmpdir(), 'edge-certs-'))),
    tls: {
      acme: {
        directory: 'https://acme.example.test/directory',
        email: 'ops@example.test',
        termsOfServiceAgreed: true,
        renewCheckIntervalMs: 20,
        retryScheduleMs: [60_000, 300_000],
        ...acme,
      },
    },
    sites: Object.entries(sites).map(([name, hosts]) => ({
      name,
      hosts,
      routes: [{ path: '/', upstream: 'http://127.0.0.1:9/' }],
    })),
  });
}

/** Creates and starts a certificate manager on `clock` that orders from `issuer`. */
export async function startManager(
  config: Awaited<ReturnType<typeof acmeConfig>>,
  issuer: FakeIssuer,
  clock: FakeClock,
  logger: Logger = silentLogger,
): Promise<CertificateManager> {
  const manager = await createCertificateManager({ config, logger, issuer, now: clock.now });
  await manager.start();
  return manager;
}

/** Waits until `predicate` holds, checking every 5 ms, or fails after `timeoutMs`. */
export async function waitFor(
  predicate: () => boolean,
  timeoutMs = 5_000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Starts a TLS server on 127.0.0.1 that serves the manager's certificates like the HTTPS listener. */
export async function startTlsServer(
  manager: CertificateManager,
): Promise<{ port: number; close(): Promise<void> }> {
  const server = tls.createServer(
    {
      ...manager.defaultCertificate(),
      SNICallback: (name, callback) => manager.sniCallback(name, callback),
    },
    (socket) => socket.end(),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;

  return {
    port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Connects with `servername` (none when undefined) and returns the served leaf certificate. */
export function fetchPeerCertificate(
  port: number,
  servername: string | undefined,
  ca?: string,
): Promise<tls.PeerCertificate> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      servername,
      ca,
      rejectUnauthorized: ca !== undefined,
    });
    socket.once('secureConnect', () => {
      resolve(socket.getPeerCertificate());
      socket.destroy();
    });
    socket.once('error', reject);
  });
}
