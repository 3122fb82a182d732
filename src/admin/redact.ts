import type { EdgeConfig } from '../config/schema.ts';

export const REDACTED = '[redacted]';

/**
 * Returns the values of every secret the configuration names: deploy secrets, registry
 * passwords and the admin password hash. Longest first, so a secret containing another is
 * replaced whole.
 */
export function collectSecrets(config: EdgeConfig, env: NodeJS.ProcessEnv = process.env): string[] {
  const names = [
    ...Object.values(config.deploy.environments).map((environment) => environment.secretEnv),
    ...config.docker.registryAuth.map((auth) => auth.passwordEnv),
    config.admin.passwordHashEnv,
  ];
  const values = names
    .map((name) => env[name]?.trim())
    .filter((value) => value !== undefined && value !== '');
  return [...new Set(values as string[])].sort((a, b) => b.length - a.length);
}

/**
 * Returns a copy of `value` with every secret replaced by REDACTED in every string, keys
 * included. Status data comes from other modules (deploy errors, Docker messages), so this is
 * the last filter before anything is shown.
 */
export function redactSecrets<T>(value: T, secrets: string[]): T {
  if (secrets.length === 0) return value;
  return redactValue(value, secrets) as T;
}

function redactValue(value: unknown, secrets: string[]): unknown {
  if (typeof value === 'string') return redactString(value, secrets);
  if (Array.isArray(value)) return value.map((item) => redactValue(item, secrets));
  if (value === null || typeof value !== 'object') return value;

  const copy: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    copy[redactString(key, secrets)] = redactValue(item, secrets);
  }
  return copy;
}

function redactString(text: string, secrets: string[]): string {
  let result = text;
  for (const secret of secrets) {
    if (result.includes(secret)) result = result.split(secret).join(REDACTED);
  }
  return result;
}
