import type { Logger } from '../log.ts';
import type { PemKeyPair } from './store.ts';

/** Where the issuer publishes HTTP-01 answers while the CA validates. */
export interface ChallengeResponder {
  /** Serves `keyAuthorization` for `token` when requested with Host `host`, until removed. */
  add(host: string, token: string, keyAuthorization: string): void;
  remove(token: string): void;
}

export interface IssueRequest {
  /** DNS names of the certificate; the first is its common name. */
  names: string[];
  /** ARI identifier of the certificate this order replaces (RFC 9773 section 5). */
  replaces?: string;
  challenges: ChallengeResponder;
  logger: Logger;
}

/** Renewal window a CA suggests for one certificate (RFC 9773 section 4.2). */
export interface RenewalInfo {
  start: Date;
  end: Date;
  /** Wait before asking again, from the response's Retry-After. */
  retryAfterMs?: number;
  explanationUrl?: string;
}

/**
 * Obtains certificates from one ACME directory. The manager only talks to this interface, so
 * unit tests replace the CA with a fake.
 */
export interface AcmeIssuer {
  readonly directoryUrl: string;
  /** Places an order for `names`, answers its challenges and returns the new key and chain. */
  issue(request: IssueRequest): Promise<PemKeyPair>;
  /** Renewal window for a certificate id, or undefined when the directory has no renewalInfo. */
  renewalInfo(certificateId: string, logger: Logger): Promise<RenewalInfo | undefined>;
}
