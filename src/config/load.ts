import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { ConfigError, errorMessage } from '../errors.ts';
import { checkConfigFiles } from './files.ts';
import { countProblems, formatIssue, plainErrorMap } from './issues.ts';
import { configSchema, type EdgeConfig } from './schema.ts';

export interface ParseConfigOptions {
  /** Name of the configuration in the report, such as its file path. */
  source?: string;
  /** Folder that relative paths are resolved against; defaults to the working directory. */
  baseDir?: string;
  /**
   * Also check that the files and folders the configuration names exist and are usable (static
   * folders, certificate and key files, the ACME CA bundle). On for configuration files; off by
   * default so that configurations built in memory, as tests do, may name paths never read.
   */
  checkFiles?: boolean;
}

/**
 * Reads, validates and freezes the YAML configuration at `file`, including the checks of the
 * files and folders it names.
 */
export function loadConfigFile(file: string): EdgeConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(`reading config ${file}: ${errorMessage(error)}`);
  }

  let raw: unknown;
  try {
    raw = parseYaml(text, { prettyErrors: true });
  } catch (error) {
    const where = error instanceof YAMLParseError ? ` at line ${error.linePos?.[0]?.line}` : '';
    throw new ConfigError(`parsing config ${file}${where}: ${errorMessage(error)}`);
  }

  return parseConfig(raw, {
    source: file,
    baseDir: path.dirname(path.resolve(file)),
    checkFiles: true,
  });
}

/**
 * Validates a configuration object and returns it frozen, with relative paths made absolute
 * against `baseDir`. Every problem is reported at once, each with its path.
 */
export function parseConfig(raw: unknown, options: ParseConfigOptions = {}): EdgeConfig {
  const source = options.source ?? 'config';
  const baseDir = options.baseDir ?? process.cwd();
  // File checks read the raw input, so a missing file is reported alongside schema problems.
  const fileProblems = options.checkFiles === true ? checkConfigFiles(raw, baseDir) : [];

  const result = configSchema.safeParse(raw ?? {}, { errorMap: plainErrorMap });
  if (!result.success) {
    throw invalid(source, [...result.error.issues.map(formatIssue), ...fileProblems]);
  }

  const config = result.data;
  resolvePaths(config, baseDir);
  const problems = [...checkReferences(config), ...fileProblems];
  if (problems.length > 0) throw invalid(source, problems);

  return deepFreeze(config);
}

function invalid(source: string, problems: string[]): ConfigError {
  const list = problems.map((p) => `  - ${p}`).join('\n');
  return new ConfigError(
    `invalid config ${source}: ${countProblems(problems.length)}\n${list}`,
    problems,
  );
}

/** Cross-field rules the schema cannot express: unique names, hosts and paths, known services. */
function checkReferences(config: EdgeConfig): string[] {
  const problems: string[] = [];
  const siteNames = new Map<string, number>();
  const hostOwners = new Map<string, number>();

  config.sites.forEach((site, siteIndex) => {
    const at = `sites[${siteIndex}]`;
    if (siteNames.has(site.name)) {
      problems.push(
        `${at}.name: duplicate site name ${site.name} (also sites[${siteNames.get(site.name)}])`,
      );
    }
    siteNames.set(site.name, siteIndex);

    site.hosts.forEach((host, hostIndex) => {
      const owner = hostOwners.get(host);
      if (owner !== undefined) {
        problems.push(`${at}.hosts[${hostIndex}]: host ${host} is already used by sites[${owner}]`);
      }
      hostOwners.set(host, siteIndex);
    });

    const paths = new Map<string, number>();
    site.routes.forEach((route, routeIndex) => {
      const key = route.path === '/' ? '/' : route.path.replace(/\/+$/, '');
      if (paths.has(key)) {
        problems.push(`${at}.routes[${routeIndex}].path: duplicate path ${route.path}`);
      }
      paths.set(key, routeIndex);
      if (route.service !== undefined && !(route.service in config.services)) {
        problems.push(`${at}.routes[${routeIndex}].service: unknown service ${route.service}`);
      }
    });
  });

  for (const [name, service] of Object.entries(config.services)) {
    if (!(service.environment in config.deploy.environments)) {
      problems.push(
        `services.${name}.environment: unknown environment ${service.environment} (define it under deploy.environments)`,
      );
    }
  }
  return problems;
}

function resolvePaths(config: EdgeConfig, baseDir: string): void {
  config.certsDir = path.resolve(baseDir, config.certsDir);
  config.stateDir = path.resolve(baseDir, config.stateDir);
  for (const site of config.sites) {
    for (const route of site.routes) {
      if (route.static !== undefined) route.static = path.resolve(baseDir, route.static);
    }
  }
  for (const cert of config.tls.certificates) {
    cert.cert = path.resolve(baseDir, cert.cert);
    cert.key = path.resolve(baseDir, cert.key);
  }
  if (config.tls.acme?.caBundle !== undefined) {
    config.tls.acme.caBundle = path.resolve(baseDir, config.tls.acme.caBundle);
  }
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
