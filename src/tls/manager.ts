import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { EdgeConfig } from '../config/schema.ts';
import { ConfigError, EdgeError, errorMessage } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { CertificateStatus } from '../status.ts';
import { ChallengeStore } from './challenges.ts';
import { resolveDirectoryUrl } from './directory.ts';
import type { CertificateManager, CertificateManagerOptions } from './index.ts';
import type { CertificateGroup, CertificateMaintainer } from './maintainer.ts';
import { loadFallbackCertificate } from './fallback-store.ts';
import { certificateNotAfter } from './self-signed.ts';
import { SniCache } from './sni-cache.ts';
import { CertificateStore, type PemKeyPair } from './store.ts';

/**
 * Builds the certificate manager and loads every certificate it already has (static files and
 * stored ACME certificates), so the first handshake after listen gets them. Orders start with
 * `start()`.
 */
export async function createCertificateManager(
  options: CertificateManagerOptions,
): Promise<CertificateManager> {
  const manager = new TlsCertificateManager(options);
  await manager.load();
  return manager;
}

class TlsCertificateManager implements CertificateManager {
  private readonly config: EdgeConfig;
  private readonly logger: Logger;
  private readonly now: () => number;
  private readonly cache = new SniCache();
  private readonly challenges = new ChallengeStore();
  private readonly staticStatuses: CertificateStatus[] = [];
  private readonly fallbackStatuses: CertificateStatus[] = [];
  private fallback: SecureContext | undefined;
  private fallbackPem: PemKeyPair | undefined;
  private maintainer: CertificateMaintainer | undefined;

  constructor(private readonly options: CertificateManagerOptions) {
    this.config = options.config;
    this.logger = options.logger;
    this.now = options.now ?? Date.now;
  }

  async load(): Promise<void> {
    const staticHosts = this.loadStaticCertificates();
    const { groups, unmanaged } = this.planAcme(staticHosts);
    await this.createFallback(unmanaged);

    if (groups.length > 0) {
      this.maintainer = await this.createMaintainer(groups);
      await this.maintainer.load();
    }
  }

  async start(): Promise<void> {
    this.maintainer?.start();
  }

  async stop(): Promise<void> {
    await this.maintainer?.stop();
  }

  sniCallback(
    servername: string,
    callback: (error: Error | null, context?: SecureContext) => void,
  ): void {
    callback(null, this.cache.lookup(servername) ?? this.fallback);
  }

  defaultSecureContext(): SecureContext {
    return this.fallback!;
  }

  defaultCertificate(): PemKeyPair {
    return this.fallbackPem!;
  }

  challengeResponse(host: string, token: string): string | undefined {
    return this.challenges.response(host, token);
  }

  status(): CertificateStatus[] {
    const now = this.now();
    const managed =
      this.maintainer?.certificates.map((certificate) => certificate.status(now)) ?? [];
    return [...this.staticStatuses, ...managed, ...this.fallbackStatuses];
  }

  async renewNow(name: string): Promise<CertificateStatus> {
    const certificate = this.maintainer?.find(name);
    if (certificate === undefined) {
      throw new EdgeError('EDGE_CERTIFICATE_UNKNOWN', `no ACME certificate contains ${name}`, {
        status: 404,
        context: { name },
      });
    }

    const limitedUntil = Date.parse(certificate.metadata.rateLimitedUntil ?? '');
    if (limitedUntil > this.now()) {
      throw new EdgeError(
        'EDGE_ACME_RATE_LIMITED',
        `the CA rate-limits orders for ${certificate.names.join(', ')} until ${certificate.metadata.rateLimitedUntil}`,
        {
          status: 429,
          context: {
            names: certificate.names,
            rateLimitedUntil: certificate.metadata.rateLimitedUntil,
          },
        },
      );
    }

    const obtained = await this.maintainer!.obtain(certificate, 'renew now');
    if (!obtained) {
      const lastError = certificate.metadata.lastError;
      throw new EdgeError(
        'EDGE_CERTIFICATE_ORDER_FAILED',
        `obtaining certificate for ${certificate.names.join(', ')}: ${lastError?.message ?? 'failed'}`,
        { status: 502, context: { names: certificate.names, problemType: lastError?.type } },
      );
    }
    return certificate.status(this.now());
  }

  /** Loads `tls.certificates` and returns the hosts they cover. */
  private loadStaticCertificates(): Set<string> {
    const hosts = new Set<string>();

    for (const entry of this.config.tls.certificates) {
      let cert: string;
      let key: string;
      try {
        cert = readFileSync(entry.cert, 'utf8');
        key = readFileSync(entry.key, 'utf8');
      } catch (error) {
        throw new ConfigError(
          `reading certificate for ${entry.hosts.join(', ')}: ${errorMessage(error)}`,
        );
      }

      this.cache.set(entry.hosts, createSecureContext({ cert, key }));
      for (const host of entry.hosts) hosts.add(host);
      this.staticStatuses.push({
        names: entry.hosts,
        state: 'static',
        directory: 'file',
        notAfter: certificateNotAfter(cert).toISOString(),
      });
    }
    return hosts;
  }

  /**
   * Groups the hosts that need ACME certificates: one certificate per site with all its hosts.
   * Wildcard hosts need the DNS-01 challenge, which the edge does not implement, so they stay on
   * a static or self-signed certificate.
   */
  private planAcme(staticHosts: Set<string>): { groups: CertificateGroup[]; unmanaged: string[] } {
    const groups: CertificateGroup[] = [];
    const unmanaged: string[] = [];
    const acme = this.config.tls.acme !== undefined;

    for (const site of this.config.sites) {
      const hosts = site.hosts.filter((host) => !staticHosts.has(host));
      const wildcards = hosts.filter((host) => host.startsWith('*.'));
      const names = hosts.filter((host) => !host.startsWith('*.'));

      if (acme && wildcards.length > 0) {
        this.logger.warn(
          { site: site.name, names: wildcards },
          'wildcard hosts get no ACME certificate',
        );
      }
      if (acme && names.length > 0) groups.push({ site: site.name, names });
      unmanaged.push(...(acme ? wildcards : hosts));
    }
    return { groups, unmanaged };
  }

  /** Self-signed certificate for unknown names, missing SNI and names still waiting for ACME. */
  private async createFallback(unmanaged: string[]): Promise<void> {
    const allHosts = this.config.sites.flatMap((site) => site.hosts);
    const pem = await loadFallbackCertificate(
      this.config.certsDir,
      allHosts.length > 0 ? allHosts : ['localhost'],
      this.logger,
      this.now,
    );
    this.fallback = createSecureContext(pem);
    this.fallbackPem = pem;
    if (unmanaged.length === 0) return;

    this.cache.set(unmanaged, this.fallback);
    this.fallbackStatuses.push({
      names: unmanaged,
      state: 'self-signed',
      directory: 'self-signed',
      notAfter: certificateNotAfter(pem.cert).toISOString(),
    });
  }

  /**
   * Creates the ACME maintainer. Its modules are loaded here, only when some host gets an ACME
   * certificate, because acme-client and @peculiar/x509 cost several MB of memory.
   */
  private async createMaintainer(groups: CertificateGroup[]): Promise<CertificateMaintainer> {
    const acme = this.config.tls.acme!;
    const directoryUrl = resolveDirectoryUrl(acme.directory);
    const store = new CertificateStore(this.config.certsDir, directoryUrl);
    const { CertificateMaintainer } = await import('./maintainer.ts');
    const issuer =
      this.options.issuer ??
      new (await import('./acme-issuer.ts')).AcmeClientIssuer({
        directoryUrl,
        email: acme.email,
        caBundle: acme.caBundle === undefined ? undefined : readCaBundle(acme.caBundle),
        store,
        pollMinMs: acme.pollMinMs,
        pollMaxMs: acme.pollMaxMs,
      });

    return new CertificateMaintainer(groups, {
      issuer,
      store,
      acme,
      cache: this.cache,
      challenges: this.challenges,
      logger: this.logger,
      now: this.now,
      random: this.options.random ?? Math.random,
    });
  }
}

function readCaBundle(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`reading tls.acme.caBundle ${path}: ${errorMessage(error)}`);
  }
}
