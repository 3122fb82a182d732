import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContext } from 'node:tls';
import { ConfigError, errorMessage } from '../errors.ts';
import type { CertificateStatus } from '../status.ts';
import type { CertificateManager, CertificateManagerOptions } from './index.ts';
import { certificateNotAfter, createSelfSignedCertificate } from './self-signed.ts';

// NOTE: first version: certificates from files and a self-signed fallback, no ACME yet.
export async function createCertificateManager(
  options: CertificateManagerOptions,
): Promise<CertificateManager> {
  const { config } = options;
  const contexts = new Map<string, SecureContext>();
  const statuses: CertificateStatus[] = [];

  for (const entry of config.tls.certificates) {
    let cert: string;
    let key: string;
    try {
      cert = readFileSync(entry.cert, 'utf8');
      key = readFileSync(entry.key, 'utf8');
    } catch (error) {
      throw new ConfigError(`reading certificate for ${entry.hosts.join(', ')}: ${errorMessage(error)}`);
    }
    const context = createSecureContext({ cert, key });
    for (const host of entry.hosts) contexts.set(host, context);
    statuses.push({
      names: entry.hosts,
      state: 'static',
      directory: 'file',
      notAfter: certificateNotAfter(cert).toISOString(),
    });
  }

  const allHosts = config.sites.flatMap((site) => site.hosts);
  const missing = allHosts.filter((host) => !contexts.has(host));
  const fallbackPem = await createSelfSignedCertificate(missing.length > 0 ? missing : ['localhost']);
  const fallback = createSecureContext(fallbackPem);
  if (missing.length > 0) {
    statuses.push({
      names: missing,
      state: 'self-signed',
      directory: 'self-signed',
      notAfter: certificateNotAfter(fallbackPem.cert).toISOString(),
    });
  }

  return {
    async start() {},
    async stop() {},
    sniCallback(servername, callback) {
      callback(null, contexts.get(servername.toLowerCase()) ?? fallback);
    },
    defaultSecureContext: () => fallback,
    challengeResponse: () => undefined,
    status: () => statuses,
    async renewNow() {},
  };
}
