import type { SecureContext } from 'node:tls';
import type { EdgeConfig } from '../config/schema.ts';
import type { Logger } from '../log.ts';
import type { CertificateStatus } from '../status.ts';
import type { AcmeIssuer } from './issuer.ts';

/** Certificates for the HTTPS listener and the answers for ACME HTTP-01 challenges. */
export interface CertificateManager {
  /**
   * Starts issuance and renewal in the background. Call it once the port-80 listener accepts
   * connections: the CA validates the first orders through it.
   */
  start(): Promise<void>;
  /** Stops the renewal loop and waits briefly for running orders. */
  stop(): Promise<void>;
  /** SNI callback for `tls.createServer`; never waits on ACME and never places an order. */
  sniCallback(
    servername: string,
    callback: (error: Error | null, context?: SecureContext) => void,
  ): void;
  /** Context used when the client sends no SNI or an unknown name. */
  defaultSecureContext(): SecureContext;
  /**
   * PEM of the default context, for the `cert`/`key` options of `tls.createServer`: Node calls
   * the SNI callback only when the client sends a name, so these serve handshakes without one.
   */
  defaultCertificate(): { cert: string; key: string };
  /** Key authorization for a pending HTTP-01 token of `host` (Host header value), or undefined. */
  challengeResponse(host: string, token: string): string | undefined;
  status(): CertificateStatus[];
  /**
   * Orders a new certificate for the one that contains `name` now, ignoring the retry backoff,
   * and resolves with its status once the new one is served. Rejects with an EdgeError: 404 when
   * no ACME certificate contains `name`, 429 while the CA's rate limit lasts, 502 when the order
   * failed.
   */
  renewNow(name: string): Promise<CertificateStatus>;
}

export interface CertificateManagerOptions {
  config: EdgeConfig;
  logger: Logger;
  /** Clock, replaceable in tests. */
  now?: () => number;
  /** Source of randomness for the moment picked inside an ARI window, replaceable in tests. */
  random?: () => number;
  /** CA access; defaults to acme-client against `config.tls.acme.directory`. */
  issuer?: AcmeIssuer;
}

export type { AcmeIssuer, ChallengeResponder, IssueRequest, RenewalInfo } from './issuer.ts';
export { createCertificateManager } from './manager.ts';
