import type { EdgeContext } from '../context.ts';
import { errorMessage } from '../errors.ts';
import { AdminAuth } from './auth.ts';
import { AdminEndpoints } from './endpoints.ts';
import { LoginRateLimiter, type LoginLimiterOptions } from './login-limiter.ts';
import { parsePasswordHash, type PasswordHash } from './password.ts';
import { collectSecrets } from './redact.ts';
import { SessionStore } from './sessions.ts';

export { hashPasswordCommand } from './cli.ts';
export type { StatusReport } from './status-types.ts';

export interface AdminOptions {
  /** Environment to read the password hash and the secrets from; defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  /** Clock in milliseconds since the epoch. */
  now?: () => number;
  loginLimiter?: LoginLimiterOptions;
}

/**
 * Registers the admin page, status JSON, metrics, login and health endpoints on the edge API.
 * Without a valid password hash every endpoint but `/health` responds 503 and shows no data.
 */
export function registerAdminRoutes(
  context: EdgeContext,
  options: AdminOptions = {},
): AdminEndpoints {
  const env = options.env ?? process.env;
  const log = context.logger.child({ module: 'admin' });
  const now = options.now ?? Date.now;
  const auth = new AdminAuth({
    passwordHash: readPasswordHash(context, env),
    sessions: new SessionStore({ ttlMs: context.config.admin.sessionTtlMs, now }),
    limiter: new LoginRateLimiter({ now, ...options.loginLimiter }),
    logger: log,
    sessionTtlMs: context.config.admin.sessionTtlMs,
    now,
  });

  const endpoints = new AdminEndpoints(context, auth, {
    secrets: collectSecrets(context.config, env),
    now,
    logger: log,
  });
  endpoints.register(context.api);
  return endpoints;
}

function readPasswordHash(context: EdgeContext, env: NodeJS.ProcessEnv): PasswordHash | undefined {
  const name = context.config.admin.passwordHashEnv;
  const text = env[name]?.trim() ?? '';
  if (text === '') {
    context.logger.warn({ env: name }, 'admin page disabled: no password hash configured');
    return undefined;
  }

  try {
    return parsePasswordHash(text);
  } catch (error) {
    context.logger.error(
      { env: name, error: errorMessage(error) },
      'admin page disabled: invalid password hash',
    );
    return undefined;
  }
}
