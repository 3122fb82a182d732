import { constants, accessSync, readFileSync, statSync } from 'node:fs';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import path from 'node:path';
import { errorMessage } from '../errors.ts';
import { listAt, valueAt } from './raw.ts';
import { configSchema } from './schema.ts';

/**
 * Checks the files and folders a configuration names: static route folders, certificate and key
 * files (which must parse and belong together), the ACME CA bundle, and certsDir and stateDir
 * (which may be missing but must not be files). Paths are read from the raw input and resolved
 * against `baseDir`, so they are checked even when other parts of the configuration are invalid.
 * Returns one problem per path, such as `tls.certificates[0].cert: file not found: /x/app.pem`.
 */
export function checkConfigFiles(raw: unknown, baseDir: string): string[] {
  const problems: string[] = [];

  listAt(raw, 'sites').forEach((site, siteIndex) => {
    listAt(site, 'routes').forEach((route, routeIndex) => {
      const folder = pathAt(route, 'static', baseDir);
      const problem = folder === undefined ? undefined : checkFolder(folder);
      if (problem !== undefined) {
        problems.push(`sites[${siteIndex}].routes[${routeIndex}].static: ${problem}`);
      }
    });
  });

  const tls = valueAt(raw, 'tls');
  listAt(tls, 'certificates').forEach((entry, index) => {
    const cert = pathAt(entry, 'cert', baseDir);
    const key = pathAt(entry, 'key', baseDir);
    problems.push(...checkCertificatePair(`tls.certificates[${index}]`, cert, key));
  });

  const caBundle = pathAt(valueAt(tls, 'acme'), 'caBundle', baseDir);
  const caProblem = caBundle === undefined ? undefined : checkFile(caBundle);
  if (caProblem !== undefined) problems.push(`tls.acme.caBundle: ${caProblem}`);

  for (const key of ['certsDir', 'stateDir'] as const) {
    const folder = configSchema.shape[key].safeParse(valueAt(raw, key));
    const problem = folder.success
      ? checkCreatableFolder(path.resolve(baseDir, folder.data))
      : undefined;
    if (problem !== undefined) problems.push(`${key}: ${problem}`);
  }
  return problems;
}

/** Checks that `certFile` contains a PEM certificate and `keyFile` its private key. */
function checkCertificatePair(
  at: string,
  certFile: string | undefined,
  keyFile: string | undefined,
): string[] {
  const certProblem = certFile === undefined ? undefined : checkFile(certFile);
  const keyProblem = keyFile === undefined ? undefined : checkFile(keyFile);
  const problems: string[] = [];
  if (certProblem !== undefined) problems.push(`${at}.cert: ${certProblem}`);
  if (keyProblem !== undefined) problems.push(`${at}.key: ${keyProblem}`);
  if (problems.length > 0 || certFile === undefined || keyFile === undefined) return problems;

  const certificate = parse(() => new X509Certificate(readFileSync(certFile)));
  if (typeof certificate === 'string') {
    return [`${at}.cert: no PEM certificate in ${certFile}: ${certificate}`];
  }
  const key = parse(() => createPrivateKey(readFileSync(keyFile)));
  if (typeof key === 'string') return [`${at}.key: no PEM private key in ${keyFile}: ${key}`];

  if (!certificate.checkPrivateKey(key)) {
    return [`${at}.key: the key in ${keyFile} does not belong to the certificate in ${certFile}`];
  }
  return [];
}

function checkFile(file: string): string | undefined {
  const kind = pathKind(file);
  if (kind === 'missing') return `file not found: ${file}`;
  if (kind === 'folder') return `is a folder, not a file: ${file}`;
  return kind === 'file' ? undefined : `not readable by the edge process: ${file}`;
}

function checkFolder(folder: string): string | undefined {
  const kind = pathKind(folder);
  if (kind === 'missing') return `folder not found: ${folder}`;
  if (kind === 'file') return `is a file, not a folder: ${folder}`;
  return kind === 'folder' ? undefined : `not readable by the edge process: ${folder}`;
}

/** Checks a folder the edge creates at start when it is missing, so only a non-folder fails. */
function checkCreatableFolder(folder: string): string | undefined {
  try {
    if (statSync(folder).isDirectory()) return undefined;
    return `is a file, not a folder: ${folder}`;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ENOTDIR') return `cannot be created, because a parent is a file: ${folder}`;
    return `not accessible by the edge process: ${folder}: ${errorMessage(error)}`;
  }
}

/** Classifies a path. 'file' and 'folder' mean readable ones. */
function pathKind(target: string): 'missing' | 'file' | 'folder' | 'unreadable' {
  try {
    const isFolder = statSync(target).isDirectory();
    // Serving files from a folder needs search (x) permission on it as well as read.
    accessSync(target, isFolder ? constants.R_OK | constants.X_OK : constants.R_OK);
    return isFolder ? 'folder' : 'file';
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === 'ENOENT' || code === 'ENOTDIR' ? 'missing' : 'unreadable';
  }
}

/** Returns the absolute path in a string field, or undefined when the field is not a path. */
function pathAt(parent: unknown, key: string, baseDir: string): string | undefined {
  const value = valueAt(parent, key);
  return typeof value === 'string' && value !== '' ? path.resolve(baseDir, value) : undefined;
}

/** Returns the parsed value, or the parser's message when it throws. */
function parse<T>(parser: () => T): T | string {
  try {
    return parser();
  } catch (error) {
    return errorMessage(error);
  }
}
