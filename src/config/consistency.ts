import type { z, ZodTypeAny } from 'zod';
import { isRecord, listAt, valueAt } from './raw.ts';
import { configSchema } from './schema.ts';

const siteFields = configSchema.shape.sites.element.shape;
const routeFields = siteFields.routes.element.innerType().shape;
const serviceFields = configSchema.shape.services.removeDefault().valueSchema.shape;
const listenFields = configSchema.shape.listen.removeDefault().shape;
const acmeFields = configSchema.shape.tls.removeDefault().shape.acme.unwrap().shape;

/**
 * Checks the cross-field rules the schema cannot express: unique site names, hosts and route
 * paths, and references to known services and environments. Reads the raw input and parses each
 * field with its own schema, so the rules run over every well-formed part even when other parts
 * are invalid, and a malformed field is left to the schema's report.
 */
export function checkConsistency(raw: unknown): string[] {
  return [
    ...checkListenPorts(raw),
    ...checkAcmePolling(raw),
    ...checkSites(raw, keysAt(raw, 'services')),
    ...checkServiceEnvironments(raw),
  ];
}

/** Checks that the two listeners get different ports, unless the system picks both (0). */
function checkListenPorts(raw: unknown): string[] {
  const listen = valueAt(raw, 'listen');
  if (listen !== undefined && !isRecord(listen)) return [];

  const httpPort = parsed(listenFields.httpPort, valueAt(listen, 'httpPort'));
  const httpsPort = parsed(listenFields.httpsPort, valueAt(listen, 'httpsPort'));
  if (httpPort === undefined || httpPort === 0 || httpPort !== httpsPort) return [];
  return [`listen.httpsPort: must differ from listen.httpPort (both are ${httpsPort})`];
}

/** Checks that ACME polling starts at a wait no longer than its maximum. */
function checkAcmePolling(raw: unknown): string[] {
  const acme = valueAt(valueAt(raw, 'tls'), 'acme');
  if (!isRecord(acme)) return [];

  const pollMinMs = parsed(acmeFields.pollMinMs, valueAt(acme, 'pollMinMs'));
  const pollMaxMs = parsed(acmeFields.pollMaxMs, valueAt(acme, 'pollMaxMs'));
  if (pollMinMs === undefined || pollMaxMs === undefined || pollMinMs <= pollMaxMs) return [];
  return [
    `tls.acme.pollMinMs: must be at most tls.acme.pollMaxMs (${pollMaxMs}), got ${pollMinMs}`,
  ];
}

function checkSites(raw: unknown, services: Set<string> | undefined): string[] {
  const problems: string[] = [];
  const siteNames = new Map<string, number>();
  const hostOwners = new Map<string, number>();

  listAt(raw, 'sites').forEach((site, siteIndex) => {
    const at = `sites[${siteIndex}]`;
    const name = parsed(siteFields.name, valueAt(site, 'name'));
    const sameName = name === undefined ? undefined : siteNames.get(name);
    if (sameName !== undefined) {
      problems.push(`${at}.name: duplicate site name ${name} (also sites[${sameName}])`);
    }
    if (name !== undefined && sameName === undefined) siteNames.set(name, siteIndex);

    listAt(site, 'hosts').forEach((value, hostIndex) => {
      const host = parsed(siteFields.hosts.element, value);
      if (host === undefined) return;

      const owner = hostOwners.get(host);
      if (owner !== undefined) {
        problems.push(`${at}.hosts[${hostIndex}]: host ${host} is already used by sites[${owner}]`);
      }
      if (owner === undefined) hostOwners.set(host, siteIndex);
    });

    problems.push(...checkRoutes(at, listAt(site, 'routes'), services));
  });
  return problems;
}

/** Checks one site's routes: unique paths and known services (when `services` is known). */
function checkRoutes(at: string, routes: unknown[], services: Set<string> | undefined): string[] {
  const problems: string[] = [];
  const paths = new Map<string, number>();

  routes.forEach((route, routeIndex) => {
    const path = parsed(routeFields.path, valueAt(route, 'path'));
    if (path !== undefined) {
      const key = path === '/' ? '/' : path.replace(/\/+$/, '');
      if (paths.has(key)) problems.push(`${at}.routes[${routeIndex}].path: duplicate path ${path}`);
      paths.set(key, routeIndex);
    }

    const service = parsed(routeFields.service, valueAt(route, 'service'));
    if (service !== undefined && services !== undefined && !services.has(service)) {
      problems.push(`${at}.routes[${routeIndex}].service: unknown service ${service}`);
    }
  });
  return problems;
}

function checkServiceEnvironments(raw: unknown): string[] {
  const services = valueAt(raw, 'services');
  const environments = keysAt(valueAt(raw, 'deploy'), 'environments');
  if (!isRecord(services) || environments === undefined) return [];

  const problems: string[] = [];
  for (const [name, service] of Object.entries(services)) {
    const environment = parsed(serviceFields.environment, valueAt(service, 'environment'));
    if (environment !== undefined && !environments.has(environment)) {
      problems.push(
        `services.${name}.environment: unknown environment ${environment} (define it under deploy.environments)`,
      );
    }
  }
  return problems;
}

/**
 * Returns the keys of the mapping at `key`: an empty set when it is missing (the schema's default
 * is empty), undefined when the parent or the value is malformed and the keys are unknown.
 */
function keysAt(parent: unknown, key: string): Set<string> | undefined {
  if (parent === undefined) return new Set();
  if (!isRecord(parent)) return undefined;

  const value = valueAt(parent, key);
  if (value === undefined) return new Set();
  return isRecord(value) ? new Set(Object.keys(value)) : undefined;
}

/** Returns the value parsed by its own schema, or undefined when it is invalid. */
function parsed<T extends ZodTypeAny>(schema: T, value: unknown): z.output<T> | undefined {
  const result = schema.safeParse(value);
  return result.success ? (result.data as z.output<T>) : undefined;
}
