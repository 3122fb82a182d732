import { readFileSync } from 'node:fs';
import path from 'node:path';
import type * as YamlModule from 'yaml';
import { withYaml } from '../packages.ts';
import { ConfigError, errorMessage } from '../errors.ts';
import { checkConsistency } from './consistency.ts';
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

  const raw = withYaml((yaml) => parseYaml(yaml, file, text));

  return parseConfig(raw, {
    source: file,
    baseDir: path.dirname(path.resolve(file)),
    checkFiles: true,
  });
}

/** Parses `text` as one YAML document, or throws a ConfigError that names `file`. */
function parseYaml(yaml: typeof YamlModule, file: string, text: string): unknown {
  try {
    return yaml.parse(text, { prettyErrors: true }) as unknown;
  } catch (error) {
    throw new ConfigError(`parsing config ${file}: ${yamlErrorMessage(yaml, error, text)}`);
  }
}

/** Describes a YAML parse error. yaml's message already gives the line and column. */
function yamlErrorMessage(yaml: typeof YamlModule, error: unknown, text: string): string {
  if (error instanceof yaml.YAMLParseError && error.code === 'MULTIPLE_DOCS') {
    const count = yaml.parseAllDocuments(text).length;
    return `the file contains ${count} YAML documents separated by ---, but the configuration must be one document`;
  }
  return errorMessage(error).trimEnd();
}

/**
 * Validates a configuration object and returns it frozen, with relative paths made absolute
 * against `baseDir`. Every problem is reported at once, each with its path.
 */
export function parseConfig(raw: unknown, options: ParseConfigOptions = {}): EdgeConfig {
  const source = options.source ?? 'config';
  const baseDir = options.baseDir ?? process.cwd();
  // File and cross-field checks read the raw input, so they run even where the schema fails.
  const fileProblems = options.checkFiles === true ? checkConfigFiles(raw, baseDir) : [];
  const consistencyProblems = checkConsistency(raw);

  const result = configSchema.safeParse(raw ?? {}, { errorMap: plainErrorMap });
  const schemaProblems = result.success ? [] : result.error.issues.map(formatIssue);
  const problems = [...schemaProblems, ...consistencyProblems, ...fileProblems];
  if (!result.success || problems.length > 0) throw invalid(source, problems);

  const config = result.data;
  resolvePaths(config, baseDir);
  return deepFreeze(config);
}

function invalid(source: string, problems: string[]): ConfigError {
  const list = problems.map((p) => `  - ${p}`).join('\n');
  return new ConfigError(
    `invalid config ${source}: ${countProblems(problems.length)}\n${list}`,
    problems,
  );
}

function resolvePaths(config: EdgeConfig, baseDir: string): void {
  config.certsDir = path.resolve(baseDir, config.certsDir);
  config.stateDir = path.resolve(baseDir, config.stateDir);
  config.docker.socket = path.resolve(baseDir, config.docker.socket);
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
