import { createSecureContext, type SecureContext } from 'node:tls';
import type { CertificateStatus } from '../status.ts';
import { readCertificateInfo, type CertificateInfo } from './certificate.ts';
import { renewalDueByLifetime } from './renewal-policy.ts';
import type { CertificateMetadata, PemKeyPair } from './store.ts';

/** One ACME certificate the edge keeps: the names of one site, its current chain and state. */
export class ManagedCertificate {
  /** Store key: the first configured name. */
  readonly key: string;
  readonly site: string;
  readonly names: string[];
  metadata: CertificateMetadata;
  info: CertificateInfo | undefined;
  context: SecureContext | undefined;
  /** True while an order for these names is running. */
  ordering = false;

  constructor(site: string, names: string[], metadata: CertificateMetadata) {
    this.site = site;
    this.names = names;
    this.key = names[0]!;
    this.metadata = metadata;
  }

  /** Builds the SecureContext of `pem` (it throws when key and chain do not match) and keeps it. */
  install(pem: PemKeyPair): CertificateInfo {
    const info = readCertificateInfo(pem.cert);
    this.context = createSecureContext({ cert: pem.cert, key: pem.key });
    this.info = info;
    return info;
  }

  /** True when a certificate is loaded and `now` is inside its validity. */
  isValid(now: number): boolean {
    if (this.info === undefined) return false;
    return now >= this.info.notBefore.getTime() && now < this.info.notAfter.getTime();
  }

  /** When renewal is due: one third of the lifetime left, or earlier inside the CA's window. */
  renewAt(): number | undefined {
    if (this.info === undefined) return undefined;

    const byLifetime = renewalDueByLifetime(
      this.info.notBefore.getTime(),
      this.info.notAfter.getTime(),
    );
    const selected = this.metadata.renewalInfo?.selected;
    return selected === undefined ? byLifetime : Math.min(byLifetime, Date.parse(selected));
  }

  /** Earliest time the next order may be placed, from the retry backoff and any rate limit. */
  notBeforeNextAttempt(): number {
    const next = Date.parse(this.metadata.nextAttemptAt ?? '') || 0;
    const limited = Date.parse(this.metadata.rateLimitedUntil ?? '') || 0;
    return Math.max(next, limited);
  }

  /** When the next order should be placed: now when there is no valid certificate. */
  dueAt(now: number): number {
    const target = this.isValid(now) && this.coversAllNames() ? this.renewAt()! : now;
    return Math.max(target, this.notBeforeNextAttempt());
  }

  /** True when the loaded certificate names exactly the configured names. */
  coversAllNames(): boolean {
    const names = this.info?.names ?? [];
    return names.length === this.names.length && this.names.every((name) => names.includes(name));
  }

  status(now: number): CertificateStatus {
    const { metadata, info } = this;
    const renewAt = this.renewAt();

    return {
      names: this.names,
      site: this.site,
      state: this.state(now),
      directory: metadata.directory,
      issuer: info?.issuer,
      serial: info?.serial,
      notBefore: info?.notBefore.toISOString(),
      notAfter: info?.notAfter.toISOString(),
      renewAt: renewAt === undefined ? undefined : new Date(renewAt).toISOString(),
      lastAttemptAt: metadata.lastAttemptAt,
      nextAttemptAt: metadata.nextAttemptAt,
      lastError: metadata.lastError,
      rateLimitedUntil: this.rateLimitedAt(now) ? metadata.rateLimitedUntil : undefined,
    };
  }

  private state(now: number): CertificateStatus['state'] {
    if (this.isValid(now)) return 'valid';
    if (this.metadata.failures > 0 && !this.ordering) return 'failed';
    return 'pending';
  }

  private rateLimitedAt(now: number): boolean {
    const until = Date.parse(this.metadata.rateLimitedUntil ?? '');
    return !Number.isNaN(until) && until > now;
  }
}
