import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage } from '../errors.ts';
import type { Logger } from '../log.ts';
import { writeFileAtomic } from './atomic-file.ts';
import { certificateNotAfter, createSelfSignedCertificate } from './self-signed.ts';
import type { PemKeyPair } from './store.ts';

/** Folder of the self-signed fallback certificate under `certsDir`. */
export const FALLBACK_FOLDER = 'self-signed';
/** A stored fallback certificate is replaced when it has less validity left than this. */
export const FALLBACK_RENEW_BEFORE_MS = 30 * 24 * 60 * 60 * 1000;
/**
 * Validity of a new fallback certificate. Nothing renews it while the edge runs, so it lasts a
 * year: clients never trust it by default anyway, and the ones given it with `--ca` keep working.
 */
export const FALLBACK_VALIDITY_DAYS = 365;

interface FallbackMetadata {
  names: string[];
}

/**
 * Returns the self-signed fallback certificate for `names`. The certificate is kept in
 * `certsDir/self-signed/`, so clients that pinned it (a deploy CLI given it with `--ca`) keep
 * trusting the edge across restarts. A new one is made when the names change or less than
 * FALLBACK_RENEW_BEFORE_MS of validity is left. A folder that cannot be read or written only
 * costs the reuse: the edge starts with a new certificate and logs why.
 */
export async function loadFallbackCertificate(
  certsDir: string,
  names: string[],
  logger: Logger,
  now: () => number = Date.now,
): Promise<PemKeyPair> {
  const folder = join(certsDir, FALLBACK_FOLDER);
  const stored = await readStored(folder, names, now);
  if (stored !== undefined) return stored;

  const pem = await createSelfSignedCertificate(names, FALLBACK_VALIDITY_DAYS);
  try {
    await writeFileAtomic(join(folder, 'key.pem'), pem.key, 0o600);
    await writeFileAtomic(join(folder, 'cert.pem'), pem.cert, 0o644);
    const metadata: FallbackMetadata = { names };
    await writeFileAtomic(join(folder, 'names.json'), `${JSON.stringify(metadata)}\n`);
  } catch (error) {
    logger.warn(
      { folder, err: errorMessage(error) },
      'self-signed certificate not stored; a new one is made at the next start',
    );
  }
  return pem;
}

async function readStored(
  folder: string,
  names: string[],
  now: () => number,
): Promise<PemKeyPair | undefined> {
  try {
    const metadata = JSON.parse(
      await readFile(join(folder, 'names.json'), 'utf8'),
    ) as FallbackMetadata;
    if (!sameNames(metadata.names, names)) return undefined;

    const cert = await readFile(join(folder, 'cert.pem'), 'utf8');
    const key = await readFile(join(folder, 'key.pem'), 'utf8');
    if (!new X509Certificate(cert).checkPrivateKey(createPrivateKey(key))) return undefined;
    const left = certificateNotAfter(cert).getTime() - now();
    return left > FALLBACK_RENEW_BEFORE_MS ? { cert, key } : undefined;
  } catch {
    // Missing or damaged files: a new certificate replaces them.
    return undefined;
  }
}

function sameNames(stored: unknown, names: string[]): boolean {
  return (
    Array.isArray(stored) &&
    stored.length === names.length &&
    stored.every((name, index) => name === names[index])
  );
}
