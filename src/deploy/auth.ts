import { createHmac, timingSafeEqual } from 'node:crypto';
import type { EdgeConfig } from '../config/schema.ts';
import { EdgeError } from '../errors.ts';
import type { Logger } from '../log.ts';
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
 * Failed attempts are counted per client address, and past the limit the address gets 429
 * until its window ends.
 */
export class DeployAuth {
  private readonly secrets = new Map<string, Buffer>();
  private readonly disabled = new Map<string, string>();
  private readonly seen = new Map<string, number>();
  private readonly failures = new Map<string, { count: number; windowEnd: number }>();
  private readonly config: EdgeConfig;
  private readonly now: () => number;

  constructor(options: DeployAuthOptions) {
    this.config = options.config;
    this.now = options.now ?? Date.now;
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

  /** Returns why deploys of `environment` are disabled, or undefined when they are enabled. */
  disabledReason(environment: string): string | undefined {
    return this.disabled.get(environment);
  }

  /** Rejects with 429 when `clientAddress` has used up its failed attempts. */
  checkRateLimit(clientAddress: string): void {
    const entry = this.failures.get(clientAddress);
    if (entry === undefined || entry.windowEnd <= this.now()) return;
    if (entry.count < this.config.deploy.maxFailedAttempts) return;

    const retryAfterSeconds = Math.ceil((entry.windowEnd - this.now()) / 1000);
    throw new EdgeError(
      'EDGE_DEPLOY_RATE_LIMITED',
      'too many failed deploy requests from this address',
      {
        status: 429,
        context: { clientAddress, retryAfterSeconds },
      },
    );
  }

  /** Counts a rejected request against its client address. */
  recordFailure(clientAddress: string): void {
    const now = this.now();
    const entry = this.failures.get(clientAddress);
    if (entry === undefined || entry.windowEnd <= now) {
      this.failures.set(clientAddress, {
        count: 1,
        windowEnd: now + this.config.deploy.failedAttemptsWindowMs,
      });
      this.pruneFailures(now);
      return;
    }
    entry.count++;
  }

  /**
   * Verifies the signature and returns the environment whose secret made it. Throws 401 for a
   * missing, malformed, expired, replayed or wrong signature and 503 when no environment has a
   * secret.
   */
  verify(request: SignedRequest): string {
    if (this.secrets.size === 0) {
      throw new EdgeError(
        'EDGE_DEPLOY_DISABLED',
        'deploys are disabled: no environment has a deploy secret',
        {
          status: 503,
        },
      );
    }
    const { timestamp, signature } = request;
    if (timestamp === undefined || signature === undefined) {
      throw unauthorized('missing X-Edge-Timestamp or X-Edge-Signature header');
    }
    if (!TIMESTAMP_PATTERN.test(timestamp) || !SIGNATURE_PATTERN.test(signature)) {
      throw unauthorized('malformed X-Edge-Timestamp or X-Edge-Signature header');
    }
    this.checkSkew(Number(timestamp) * 1000);

    const environment = this.matchSecret(timestamp, request.content, signature);
    if (environment === undefined) throw unauthorized('invalid signature');

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

  private pruneFailures(now: number): void {
    for (const [address, entry] of this.failures) {
      if (entry.windowEnd <= now) this.failures.delete(address);
    }
  }
}

function unauthorized(message: string): EdgeError {
  return new EdgeError('EDGE_DEPLOY_UNAUTHORIZED', message, { status: 401 });
}
