import type { EdgeConfig } from '../config/schema.ts';
import type { RegistryCredentials } from './engine.ts';

const DOCKER_HUB = 'docker.io';

/**
 * Returns the registry host of an image reference: the first path component when it looks like
 * a host (has a dot or a port, or is localhost), else Docker Hub.
 */
export function registryOf(ref: string): string {
  const slash = ref.indexOf('/');
  if (slash < 0) return DOCKER_HUB;

  const first = ref.slice(0, slash);
  const isHost = first.includes('.') || first.includes(':') || first === 'localhost';
  return isHost ? first : DOCKER_HUB;
}

/**
 * Returns the configured credentials for the registry of `ref`, with the password read from its
 * environment variable at the time of the pull so a rotated token needs no restart. Undefined
 * when no entry matches or its variable is empty.
 */
export function credentialsFor(
  config: EdgeConfig,
  ref: string,
  env: NodeJS.ProcessEnv = process.env,
): RegistryCredentials | undefined {
  const registry = registryOf(ref);
  const entry = config.docker.registryAuth.find((auth) => auth.registry === registry);
  if (entry === undefined) return undefined;

  const password = env[entry.passwordEnv];
  if (password === undefined || password === '') return undefined;
  return { username: entry.username, password, serveraddress: entry.registry };
}
