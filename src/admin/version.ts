import { readFileSync } from 'node:fs';

/** Version from package.json, read once at start; `unknown` when the file is missing. */
export const EDGE_VERSION = readPackageVersion();

function readPackageVersion(): string {
  try {
    const text = readFileSync(new URL('../../package.json', import.meta.url), 'utf8');
    const version = (JSON.parse(text) as { version?: unknown }).version;
    return typeof version === 'string' ? version : 'unknown';
  } catch {
    return 'unknown';
  }
}
