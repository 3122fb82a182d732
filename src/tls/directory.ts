/**
 * Directory names accepted in `tls.acme.directory` besides URLs. The URLs are the ones
 * acme-client 5 lists in `acme.directory.letsencrypt` (a unit test compares them), written out so
 * that resolving a name does not load acme-client.
 */
export const NAMED_DIRECTORIES: Record<string, string> = {
  letsencrypt: 'https://acme-v02.api.letsencrypt.org/directory',
  'letsencrypt-staging': 'https://acme-staging-v02.api.letsencrypt.org/directory',
};

/** Returns the directory URL for a configured name or URL. */
export function resolveDirectoryUrl(directory: string): string {
  return NAMED_DIRECTORIES[directory] ?? directory;
}

/**
 * Returns a folder name unique to a directory URL (host, port and path), so accounts and
 * certificates of staging, production and test CAs never mix on disk.
 */
export function directoryKey(directoryUrl: string): string {
  const url = new URL(directoryUrl);
  const raw = `${url.host}${url.pathname}`.toLowerCase();

  return raw
    .replace(/[^a-z0-9.-]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .slice(0, 120);
}
