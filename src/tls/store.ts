import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from './atomic-file.ts';
import { directoryKey } from './directory.ts';

const PRIVATE_MODE = 0o600;
const PUBLIC_MODE = 0o644;

/** State of one managed certificate, kept in `meta.json` beside its files. */
export interface CertificateMetadata {
  /** Names the certificate must cover; the first one names its folder. */
  names: string[];
  /** ACME directory URL the certificate comes from. */
  directory: string;
  /** Serial (lowercase hex) of the certificate in use; its files are in the folder of that name. */
  serial?: string;
  notBefore?: string;
  notAfter?: string;
  issuer?: string;
  lastAttemptAt?: string;
  lastSuccessAt?: string;
  lastError?: { message: string; type?: string; at: string };
  nextAttemptAt?: string;
  rateLimitedUntil?: string;
  /** Failed attempts since the last success; picks the entry of the retry schedule. */
  failures: number;
  /** Renewal window suggested by the CA (RFC 9773) and when to ask again. */
  renewalInfo?: RenewalWindow;
}

export interface RenewalWindow {
  start: string;
  end: string;
  /** Moment picked at random inside the window, kept so each check does not pick anew. */
  selected: string;
  /** Do not fetch the renewal information again before this time. */
  checkAfter: string;
  explanationUrl?: string;
}

export interface PemKeyPair {
  /** Full chain, leaf first. */
  cert: string;
  key: string;
}

export interface StoredCertificate {
  metadata: CertificateMetadata;
  /** Missing while no certificate was obtained yet. */
  pem?: PemKeyPair;
}

export interface StoredAccount {
  key: string;
  url?: string;
}

/**
 * Accounts and certificates of one ACME directory under `certsDir/<directory key>/`:
 * `account/key.pem`, `account/account.json`, and per certificate
 * `certificates/<first name>/meta.json` plus `<serial>/privkey.pem` and `<serial>/fullchain.pem`.
 * `meta.json` is written last and names the serial in use, so a crash while saving leaves the
 * previous key and chain in use, never a key that does not match its chain.
 */
export class CertificateStore {
  readonly root: string;

  constructor(certsDir: string, directoryUrl: string) {
    this.root = join(certsDir, directoryKey(directoryUrl));
  }

  async loadAccount(): Promise<StoredAccount | undefined> {
    const key = await readOptional(join(this.root, 'account', 'key.pem'));
    if (key === undefined) return undefined;

    const json = await readOptional(join(this.root, 'account', 'account.json'));
    const url = json === undefined ? undefined : (JSON.parse(json) as { url?: string }).url;
    return { key, url };
  }

  async saveAccount(account: StoredAccount): Promise<void> {
    const folder = join(this.root, 'account');
    await writeFileAtomic(join(folder, 'key.pem'), account.key, PRIVATE_MODE);
    await writeFileAtomic(
      join(folder, 'account.json'),
      `${JSON.stringify({ url: account.url })}\n`,
    );
  }

  async loadCertificate(name: string): Promise<StoredCertificate | undefined> {
    const folder = this.certificateFolder(name);
    const json = await readOptional(join(folder, 'meta.json'));
    if (json === undefined) return undefined;

    const metadata = JSON.parse(json) as CertificateMetadata;
    if (metadata.serial === undefined) return { metadata };

    const generation = join(folder, safeSegment(metadata.serial));
    const cert = await readFile(join(generation, 'fullchain.pem'), 'utf8');
    const key = await readFile(join(generation, 'privkey.pem'), 'utf8');
    return { metadata, pem: { cert, key } };
  }

  /** Saves a new key and chain, then the metadata that points at them, then drops older ones. */
  async saveCertificate(
    name: string,
    metadata: CertificateMetadata,
    pem: PemKeyPair,
  ): Promise<void> {
    if (metadata.serial === undefined) throw new Error('saving a certificate needs its serial');

    const folder = this.certificateFolder(name);
    const generation = join(folder, safeSegment(metadata.serial));
    await writeFileAtomic(join(generation, 'privkey.pem'), pem.key, PRIVATE_MODE);
    await writeFileAtomic(join(generation, 'fullchain.pem'), pem.cert, PUBLIC_MODE);
    await this.saveMetadata(name, metadata);
    await removeOtherGenerations(folder, safeSegment(metadata.serial));
  }

  async saveMetadata(name: string, metadata: CertificateMetadata): Promise<void> {
    const path = join(this.certificateFolder(name), 'meta.json');
    await writeFileAtomic(path, `${JSON.stringify(metadata, null, 2)}\n`);
  }

  private certificateFolder(name: string): string {
    return join(this.root, 'certificates', safeSegment(name));
  }
}

/** Keeps path segments to host-name characters so no name can escape the store. */
function safeSegment(value: string): string {
  const cleaned = value.toLowerCase().replace(/[^a-z0-9.-]/g, '_');
  return cleaned === '' || cleaned === '.' || cleaned === '..' ? '_' : cleaned;
}

async function removeOtherGenerations(folder: string, keep: string): Promise<void> {
  const entries = await readdir(folder, { withFileTypes: true });
  const stale = entries.filter((entry) => entry.isDirectory() && entry.name !== keep);

  await Promise.all(
    stale.map((entry) => rm(join(folder, entry.name), { recursive: true, force: true })),
  );
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}
