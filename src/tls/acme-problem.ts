import { EdgeError } from '../errors.ts';

const ACME_ERROR_PREFIX = 'urn:ietf:params:acme:error:';

/** ACME problem types the edge reacts to (RFC 8555 section 6.7, RFC 9773 section 7.4). */
export const PROBLEM_RATE_LIMITED = `${ACME_ERROR_PREFIX}rateLimited`;
export const PROBLEM_ACCOUNT_DOES_NOT_EXIST = `${ACME_ERROR_PREFIX}accountDoesNotExist`;
export const PROBLEM_ALREADY_REPLACED = `${ACME_ERROR_PREFIX}alreadyReplaced`;

/** Problem document of an ACME server (RFC 7807), as far as the edge reads it. */
export interface AcmeProblem {
  type?: string;
  detail?: string;
  status?: number;
}

/** An ACME request failed with a problem document, or a validation ended `invalid`. */
export class AcmeProblemError extends EdgeError {
  readonly problemType: string | undefined;
  /** Wait the CA asked for with Retry-After, in milliseconds. */
  readonly retryAfterMs: number | undefined;

  constructor(
    message: string,
    options: { problemType?: string; httpStatus?: number; retryAfterMs?: number; url?: string },
  ) {
    super('EDGE_ACME_PROBLEM', message, {
      status: 502,
      context: {
        problemType: options.problemType,
        httpStatus: options.httpStatus,
        url: options.url,
      },
    });
    this.name = 'AcmeProblemError';
    this.problemType = options.problemType;
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** The ACME server could not be reached: DNS, TCP or TLS failed before any HTTP response. */
export class AcmeNetworkError extends EdgeError {
  constructor(url: string | undefined, cause: Error & { code?: string }) {
    super('EDGE_ACME_UNREACHABLE', `requesting ${url ?? 'the ACME server'}: ${cause.message}`, {
      status: 502,
      context: { url, errorCode: cause.code },
      cause,
    });
    this.name = 'AcmeNetworkError';
  }
}

/** Returns the problem type of an error from the ACME path, if it has one. */
export function problemTypeOf(error: unknown): string | undefined {
  return error instanceof AcmeProblemError ? error.problemType : undefined;
}

/**
 * Parses a Retry-After value (RFC 9110 section 10.2.3): delay seconds or an HTTP date. Returns
 * milliseconds from `now`, or undefined when absent or unparsable.
 */
export function parseRetryAfter(value: unknown, now: number): number | undefined {
  if (typeof value !== 'string' || value.trim() === '') return undefined;

  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;

  const date = Date.parse(value);
  if (Number.isNaN(date)) return undefined;

  return Math.max(0, date - now);
}
