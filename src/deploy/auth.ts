import { createHmac, timingSafeEqual } from 'node:crypto';
import type { EdgeConfig } from '../config/schema.ts';
import { EdgeError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { FailureLimiter } from './failure-limiter.ts';
import { SIGNATURE_PREFIX } from './signature.ts';

/** Shorter secrets are treated as unset: HMAC keys should carry at least 128 bits. */
export const MIN_SECRET_LENGTH = 16;

const SIGNATURE_PATTERN = /^sha256=[0-9a-f]{64}$/;
const TIMESTAMP_PATTERN = /^\d{1,12}$/;

/** The values of a request that its signature covers. */
export interface SignedRequest {
  clientAddress: string;
  timestamp: string | undefined;
  signature: string | undefined;
  /** Text after `${timestamp}.` in the signed payload. */
  content: string;
}

export interface DeployAuthOptions {
  config: EdgeConfig;
  logger: Logger;
  env?: NodeJS.ProcessEnv;
  now?: () => number;
}

/**
 * Checks signed deploy requests: HMAC-SHA256 over `${timestamp}.${content}` with the secret of
 * one environment, compared in constant time, within the allowed clock skew, never twice.
 * Failed attempts are counted per client (IPv6 per /64), and past the limit the client gets
 * 429 until its window ends.
 */
export class DeployAuth {
  private readonly secrets = new Map<string, Buffer>();
  private readonly disabled = new Map<string, string>();
  private readonly seen = new Map<string, number>();
  private readonly failures: FailureLimiter;
  private readonly config: EdgeConfig;
  private readonly now: () => number;

  constructor(options: DeployAuthOptions) {
    this.config = options.config;
    this.now = options.now ?? Date.now;
    this.failures = new FailureLimiter({
      maxFailures: options.config.deploy.maxFailedAttempts,
      windowMs: options.config.deploy.failedAttemptsWindowMs,
      now: this.now,
    });
    const env = options.env ?? process.env;

    for (const [name, environment] of Object.entries(options.config.deploy.environments)) {
      const secret = env[environment.secretEnv] ?? '';
      if (secret.length >= MIN_SECRET_LENGTH) {
        this.secrets.set(name, Buffer.from(secret, 'utf8'));
        continue;
      }
      const reason =
        secret === '' ? 'is unset or empty' : `is shorter than ${MIN_SECRET_LENGTH} characters`;
      this.disabled.set(name, `${environment.secretEnv} ${reason}`);
      options.logger.warn(
        { environment: name, secretEnv: environment.secretEnv },
        `deploys disabled for environment ${name}: ${environment.secretEnv} ${reason}`,
      );
    }
  }

  /** Rejects with 429 when `clientAddress` has used up its failed attempts. */
  checkRateLimit(clientAddress: string): void {
    const retryAfterMs = this.failures.retryAfterMs(clientAddress);
    if (retryAfterMs === 0) return;

    const retryAfterSeconds = Math.ceil(retryAfterMs / 1000);
    throw new EdgeError(
      'EDGE_DEPLOY_RATE_LIMITED',
      'too many failed deploy requests from this address',
      {
        status: 429,
        context: { clientAddress, retryAfterSeconds },
      },
    );
  }

  /** Counts a rejected request against its client. */
  recordFailure(clientAddress: string): void {
    this.failures.recordFailure(clientAddress);
  }

  /**
   * Verifies the signature and returns the environment whose secret made it. Throws 401 for a
   * missing, malformed, expired, replayed or wrong signature. A request for a disabled
   * environment gets the same 401 as any wrong signature, so the response does not tell an
   * unauthenticated caller which environments are disabled or why; the log does.
   */
  verify(request: SignedRequest): string {
    const { timestamp, signature } = request;
    if (timestamp === undefined || signature === undefined) {
      throw unauthorized('missing X-Edge-Timestamp or X-Edge-Signature header');
    }
    if (!TIMESTAMP_PATTERN.test(timestamp) || !SIGNATURE_PATTERN.test(signature)) {
      throw unauthorized('malformed X-Edge-Timestamp or X-Edge-Signature header');
    }
    this.checkSkew(Number(timestamp) * 1000);

    const environment = this.matchSecret(timestamp, request.content, signature);
    if (environment === undefined) throw unauthorized('invalid signature', this.disabledSummary());

    this.rememberSignature(signature, Number(timestamp) * 1000);
    return environment;
  }

  private checkSkew(signedAt: number): void {
    const skew = Math.abs(this.now() - signedAt);
    if (skew <= this.config.deploy.maxClockSkewMs) return;
    throw unauthorized(
      `request timestamp is ${Math.round(skew / 1000)} s away from the edge clock ` +
        `(at most ${this.config.deploy.maxClockSkewMs / 1000} s); sign each request when it is sent`,
    );
  }

  private matchSecret(timestamp: string, content: string, signature: string): string | undefined {
    const presented = Buffer.from(signature.slice(SIGNATURE_PREFIX.length), 'hex');
    let match: string | undefined;
    // Every secret is tried, so the time taken does not tell which environment matched.
    for (const [environment, secret] of this.secrets) {
      const expected = createHmac('sha256', secret).update(`${timestamp}.${content}`).digest();
      if (timingSafeEqual(expected, presented) && match === undefined) match = environment;
    }
    return match;
  }

  private rememberSignature(signature: string, signedAt: number): void {
    const now = this.now();
    for (const [seenSignature, expiresAt] of this.seen) {
      if (expiresAt <= now) this.seen.delete(seenSignature);
    }
    if (this.seen.has(signature))
      throw unauthorized('replayed request: this signature was already used');
    // Past the skew window the timestamp check rejects the signature anyway.
    this.seen.set(signature, signedAt + this.config.deploy.maxClockSkewMs + 1);
  }

  /** Returns, for the log only, which environments cannot match any signature and why. */
  private disabledSummary(): string | undefined {
    if (this.disabled.size === 0) return undefined;

    const list = [...this.disabled].map(([name, reason]) => `${name} (${reason})`).join(', ');
    return `deploys are disabled for environment ${list}`;
  }
}

/** Builds a 401. `reason` goes to the log line of the rejection, never to the response. */
function unauthorized(message: string, reason?: string): EdgeError {
  const context = reason === undefined ? {} : { reason };
  return new EdgeError('EDGE_DEPLOY_UNAUTHORIZED', message, { status: 401, context });
}
