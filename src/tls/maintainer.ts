import type { EdgeConfig } from '../config/schema.ts';
import type { Logger } from '../log.ts';
import { errorMessage } from '../errors.ts';
import { AcmeProblemError, problemTypeOf } from './acme-problem.ts';
import { renewalCertificateId } from './certificate.ts';
import type { ChallengeStore } from './challenges.ts';
import type { AcmeIssuer } from './issuer.ts';
import { KeyedLock } from './keyed-lock.ts';
import { ManagedCertificate } from './managed-certificate.ts';
import { RenewalLoop } from './renewal-loop.ts';
import { pickInWindow, renewalInfoRecheckMs, retryDelayMs } from './renewal-policy.ts';
import type { SniCache } from './sni-cache.ts';
import type { CertificateMetadata, CertificateStore, PemKeyPair } from './store.ts';

type AcmeConfig = NonNullable<EdgeConfig['tls']['acme']>;

/** Time `stop` waits for running orders before it returns anyway. */
const STOP_WAIT_MS = 5_000;

export interface CertificateGroup {
  site: string;
  names: string[];
}

export interface MaintainerOptions {
  issuer: AcmeIssuer;
  store: CertificateStore;
  acme: AcmeConfig;
  cache: SniCache;
  challenges: ChallengeStore;
  logger: Logger;
  now: () => number;
  random: () => number;
}

/**
 * Obtains and renews the ACME certificates: loads stored ones, places orders when a
 * certificate is missing or due, retries failures on the configured schedule, and swaps renewed
 * certificates into the SNI cache. No method rejects; every failure ends in the metadata, the
 * status and the log.
 */
export class CertificateMaintainer {
  readonly certificates: ManagedCertificate[];
  private readonly options: MaintainerOptions;
  private readonly lock = new KeyedLock();
  private readonly loop: RenewalLoop;
  private readonly renewalInfoCheckAfter = new Map<ManagedCertificate, number>();
  private stopped = false;

  constructor(groups: CertificateGroup[], options: MaintainerOptions) {
    this.options = options;
    const directory = options.issuer.directoryUrl;
    this.certificates = groups.map(
      (group) =>
        new ManagedCertificate(group.site, group.names, freshMetadata(group.names, directory)),
    );
    this.loop = new RenewalLoop(() => this.check(), {
      intervalMs: options.acme.renewCheckIntervalMs,
      now: options.now,
      logger: options.logger,
    });
  }

  /** Loads stored certificates into the SNI cache; orders nothing. */
  async load(): Promise<void> {
    await Promise.all(this.certificates.map((certificate) => this.loadStored(certificate)));
  }

  start(): void {
    this.stopped = false;
    this.loop.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.loop.stop();

    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise((resolve) => (timer = setTimeout(resolve, STOP_WAIT_MS)));
    await Promise.race([this.lock.settle(), timeout]);
    clearTimeout(timer);
  }

  /** Returns the managed certificate that contains `name`. */
  find(name: string): ManagedCertificate | undefined {
    const lowered = name.toLowerCase();
    return this.certificates.find((certificate) => certificate.names.includes(lowered));
  }

  /**
   * Places an order for `certificate` now unless one is running, in which case it waits for that
   * one. Resolves true when a certificate was obtained.
   */
  obtain(certificate: ManagedCertificate, reason: string): Promise<boolean> {
    return this.lock.runOrJoin(certificate.key, () => this.order(certificate, reason));
  }

  private async loadStored(certificate: ManagedCertificate): Promise<void> {
    const { store, cache, logger, now } = this.options;
    try {
      const stored = await store.loadCertificate(certificate.key);
      if (stored === undefined) return;

      if (sameNames(stored.metadata.names, certificate.names))
        certificate.metadata = stored.metadata;
      if (stored.pem === undefined) return;

      const info = certificate.install(stored.pem);
      if (!certificate.isValid(now())) return;

      // A certificate for an older list of names still serves the names it has until the new
      // one arrives.
      cache.set(
        info.names.filter((name) => certificate.names.includes(name)),
        certificate.context!,
      );
      logger.info(
        { names: info.names, serial: info.serial, notAfter: info.notAfter.toISOString() },
        'certificate loaded',
      );
    } catch (error) {
      logger.error({ err: error, names: certificate.names }, 'loading stored certificate failed');
    }
  }

  /** Starts what is due and returns when the next thing falls due. */
  private async check(): Promise<number | undefined> {
    const now = this.options.now();
    let next: number | undefined;

    for (const certificate of this.certificates) {
      if (this.lock.isHeld(certificate.key)) continue;

      const dueAt = certificate.dueAt(now);
      if (dueAt <= now) {
        this.runDetached(this.obtain(certificate, orderReason(certificate, now)));
        continue;
      }
      next = earliest(next, dueAt);

      const renewalInfoAt = this.renewalInfoDueAt(certificate);
      if (renewalInfoAt === undefined || renewalInfoAt === Number.POSITIVE_INFINITY) continue;
      if (renewalInfoAt <= now) this.runDetached(this.refreshRenewalInfo(certificate));
      else next = earliest(next, renewalInfoAt);
    }
    return next;
  }

  private async order(certificate: ManagedCertificate, reason: string): Promise<boolean> {
    const { issuer, challenges, now } = this.options;
    const logger = this.options.logger.child({
      names: certificate.names,
      directory: issuer.directoryUrl,
    });

    certificate.ordering = true;
    certificate.metadata.lastAttemptAt = new Date(now()).toISOString();
    logger.info({ reason }, 'obtaining certificate');
    try {
      const replaces = this.replacedCertificateId(certificate);
      const pem = await issuer.issue({ names: certificate.names, replaces, challenges, logger });
      await this.installIssued(certificate, pem, logger);
      return true;
    } catch (error) {
      await this.recordFailure(certificate, error, logger);
      return false;
    } finally {
      certificate.ordering = false;
    }
  }

  private async installIssued(
    certificate: ManagedCertificate,
    pem: PemKeyPair,
    logger: Logger,
  ): Promise<void> {
    const info = certificate.install(pem);
    this.options.cache.set(certificate.names, certificate.context!);
    this.renewalInfoCheckAfter.delete(certificate);

    certificate.metadata = {
      ...freshMetadata(certificate.names, this.options.issuer.directoryUrl),
      serial: info.serial,
      notBefore: info.notBefore.toISOString(),
      notAfter: info.notAfter.toISOString(),
      issuer: info.issuer,
      lastAttemptAt: certificate.metadata.lastAttemptAt,
      lastSuccessAt: new Date(this.options.now()).toISOString(),
    };
    logger.info(
      {
        serial: info.serial,
        notAfter: certificate.metadata.notAfter,
        renewAt: isoOf(certificate.renewAt()),
      },
      'certificate obtained',
    );

    try {
      await this.options.store.saveCertificate(certificate.key, certificate.metadata, pem);
    } catch (error) {
      // The new certificate is served from memory; only a restart before the next save loses it.
      logger.error({ err: error }, 'saving certificate failed');
    }
  }

  private async recordFailure(
    certificate: ManagedCertificate,
    error: unknown,
    logger: Logger,
  ): Promise<void> {
    const now = this.options.now();
    const metadata = certificate.metadata;
    const problemType = problemTypeOf(error);
    const failures = metadata.failures + 1;
    const remaining = certificate.isValid(now)
      ? certificate.info!.notAfter.getTime() - now
      : undefined;
    let nextAttempt = now + retryDelayMs(this.options.acme.retryScheduleMs, failures, remaining);

    const retryAfterMs = error instanceof AcmeProblemError ? error.retryAfterMs : undefined;
    const rateLimitedUntil = retryAfterMs === undefined ? undefined : now + retryAfterMs;
    if (rateLimitedUntil !== undefined) nextAttempt = Math.max(nextAttempt, rateLimitedUntil);

    certificate.metadata = {
      ...metadata,
      failures,
      lastError: {
        message: errorMessage(error),
        type: problemType,
        at: new Date(now).toISOString(),
      },
      nextAttemptAt: new Date(nextAttempt).toISOString(),
      rateLimitedUntil: isoOf(rateLimitedUntil) ?? metadata.rateLimitedUntil,
    };
    logger.warn(
      {
        problemType,
        err: errorMessage(error),
        failures,
        nextAttemptAt: certificate.metadata.nextAttemptAt,
        rateLimitedUntil: isoOf(rateLimitedUntil),
      },
      'obtaining certificate failed',
    );
    await this.saveMetadata(certificate, logger);
  }

  /** When to fetch renewal information next, or undefined when there is nothing to ask about. */
  private renewalInfoDueAt(certificate: ManagedCertificate): number | undefined {
    if (certificate.info?.authorityKeyId === undefined) return undefined;

    const inMemory = this.renewalInfoCheckAfter.get(certificate);
    if (inMemory !== undefined) return inMemory;

    const stored = Date.parse(certificate.metadata.renewalInfo?.checkAfter ?? '');
    return Number.isNaN(stored) ? this.options.now() : stored;
  }

  /** Fetches the CA's renewal window (RFC 9773) and picks the moment to renew inside it. */
  private async refreshRenewalInfo(certificate: ManagedCertificate): Promise<void> {
    const { issuer, now, random } = this.options;
    const logger = this.options.logger.child({
      names: certificate.names,
      directory: issuer.directoryUrl,
    });
    const id = renewalCertificateId(certificate.info!)!;
    const serial = certificate.info!.serial;
    // Blocks a second fetch while this one runs, because the loop gets no due time until it ends.
    this.renewalInfoCheckAfter.set(certificate, Number.POSITIVE_INFINITY);

    try {
      const info = await issuer.renewalInfo(id, logger);
      const checkAfter = now() + renewalInfoRecheckMs(info?.retryAfterMs);
      this.renewalInfoCheckAfter.set(certificate, checkAfter);
      if (info === undefined || certificate.info?.serial !== serial) return;

      const previous = certificate.metadata.renewalInfo;
      const start = info.start.toISOString();
      const end = info.end.toISOString();
      const unchanged = previous?.start === start && previous.end === end;
      const selected = unchanged
        ? previous.selected
        : new Date(pickInWindow(info.start.getTime(), info.end.getTime(), random)).toISOString();

      certificate.metadata.renewalInfo = {
        start,
        end,
        selected,
        checkAfter: new Date(checkAfter).toISOString(),
        explanationUrl: info.explanationUrl,
      };
      if (!unchanged) logger.info({ start, end, selected }, 'renewal window received');
      await this.saveMetadata(certificate, logger);
    } catch (error) {
      this.renewalInfoCheckAfter.set(certificate, now() + renewalInfoRecheckMs(undefined));
      logger.warn(
        { err: errorMessage(error), problemType: problemTypeOf(error) },
        'fetching renewal window failed',
      );
    }
  }

  /** ARI id of the certificate being replaced, sent only to directories that offer ARI. */
  private replacedCertificateId(certificate: ManagedCertificate): string | undefined {
    if (certificate.metadata.renewalInfo === undefined || certificate.info === undefined)
      return undefined;
    return renewalCertificateId(certificate.info);
  }

  private async saveMetadata(certificate: ManagedCertificate, logger: Logger): Promise<void> {
    try {
      await this.options.store.saveMetadata(certificate.key, certificate.metadata);
    } catch (error) {
      logger.error({ err: error }, 'saving certificate state failed');
    }
  }

  /** Lets `task` run beside the loop and wakes the loop when it ends. */
  private runDetached(task: Promise<unknown>): void {
    task
      .catch((error: unknown) =>
        this.options.logger.error({ err: error }, 'certificate task failed'),
      )
      .finally(() => {
        if (!this.stopped) this.loop.wake();
      });
  }
}

function freshMetadata(names: string[], directory: string): CertificateMetadata {
  return { names, directory, failures: 0 };
}

function orderReason(certificate: ManagedCertificate, now: number): string {
  if (certificate.info === undefined) return 'no certificate';
  if (!certificate.isValid(now)) return 'expired';
  if (!certificate.coversAllNames()) return 'names changed';
  return 'renewal due';
}

function sameNames(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((name) => b.includes(name));
}

function earliest(current: number | undefined, candidate: number): number {
  return current === undefined ? candidate : Math.min(current, candidate);
}

function isoOf(time: number | undefined): string | undefined {
  return time === undefined ? undefined : new Date(time).toISOString();
}
