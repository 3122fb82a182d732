/**
 * Shapes of the read-only status the modules expose to the admin page, the status JSON and the
 * metrics. Times are ISO 8601 strings, durations milliseconds.
 */

export type CertificateState = 'valid' | 'pending' | 'self-signed' | 'failed' | 'static';

export interface CertificateStatus {
  /** Names on the certificate, the first one is its key in the store. */
  names: string[];
  /** Site whose hosts the certificate covers, for ACME certificates. */
  site?: string;
  state: CertificateState;
  /** ACME directory URL, or `file` / `self-signed`. */
  directory: string;
  issuer?: string;
  serial?: string;
  notBefore?: string;
  notAfter?: string;
  /** When renewal is due: one third of the lifetime left, or earlier in the CA's ARI window. */
  renewAt?: string;
  lastAttemptAt?: string;
  nextAttemptAt?: string;
  lastError?: { message: string; type?: string; at: string };
  rateLimitedUntil?: string;
}

export interface UpstreamStatus {
  site: string;
  route: string;
  /** URL of the upstream now serving the route. */
  target: string;
  /** Undefined until the first probe finished. */
  healthy?: boolean;
  latencyMs?: number;
  lastError?: string;
  /** When `lastError` happened; it is kept after the upstream recovers. */
  lastErrorAt?: string;
  /** When the health state last changed. */
  since?: string;
  /** When the last probe finished. */
  checkedAt?: string;
}

export interface ContainerStatus {
  service: string;
  container: string;
  id?: string;
  image?: string;
  digest?: string;
  state: string;
  startedAt?: string;
  restartCount?: number;
  address?: string;
}

export type DeployState = 'running' | 'succeeded' | 'failed';

export interface DeployStep {
  name: string;
  status: 'running' | 'ok' | 'failed';
  durationMs?: number;
  message?: string;
}

export interface DeployRecord {
  id: string;
  service: string;
  image: string;
  digest?: string;
  previousImage?: string;
  previousDigest?: string;
  commit?: string;
  ref?: string;
  rollback?: boolean;
  state: DeployState;
  failedStep?: string;
  error?: string;
  startedAt: string;
  finishedAt?: string;
  durationMs?: number;
  steps: DeployStep[];
}
