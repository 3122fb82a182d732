import type { SecureContext } from 'node:tls';
import type { EdgeConfig } from '../config/schema.ts';
import type { Logger } from '../log.ts';
import type { CertificateStatus } from '../status.ts';

/** Certificates for the HTTPS listener and the answers for ACME HTTP-01 challenges. */
export interface CertificateManager {
  /** Loads stored certificates and starts issuance and renewal in the background. */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** SNI callback for `tls.createServer`; never waits on ACME for a name that has a certificate. */
  sniCallback(servername: string, callback: (error: Error | null, context?: SecureContext) => void): void;
  /** Context used when the client sends no SNI or an unknown name. */
  defaultSecureContext(): SecureContext;
  /** Key authorization for a pending HTTP-01 token of `host`, or undefined. */
  challengeResponse(host: string, token: string): string | undefined;
  status(): CertificateStatus[];
  /** Starts a renewal of the certificate that contains `name` now. */
  renewNow(name: string): Promise<void>;
}

export interface CertificateManagerOptions {
  config: EdgeConfig;
  logger: Logger;
  /** Clock, replaceable in tests. */
  now?: () => number;
}

// Implemented in this folder: ACME issuer, store, renewal loop, SNI cache and fallback.
export { createCertificateManager } from './manager.ts';
