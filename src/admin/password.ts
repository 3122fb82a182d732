import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { EdgeError } from '../errors.ts';

/** scrypt cost parameters of new hashes: N = 2^15, r = 8, p = 1 (32 MiB, tens of ms per check). */
export const DEFAULT_SCRYPT_N = 2 ** 15;
export const DEFAULT_SCRYPT_R = 8;
export const DEFAULT_SCRYPT_P = 1;
export const SALT_BYTES = 16;
export const KEY_BYTES = 32;

/** Bounds on parameters read from a hash, so a mistyped hash cannot stall the process. */
const MIN_SCRYPT_N = 2 ** 10;
const MAX_SCRYPT_N = 2 ** 20;
const MAX_SCRYPT_R = 32;
const MAX_SCRYPT_P = 16;
const MIN_KEY_BYTES = 16;

export interface PasswordHash {
  n: number;
  r: number;
  p: number;
  salt: Buffer;
  key: Buffer;
}

/** Hashes `password` with scrypt and returns `scrypt$N$r$p$salt$hash` with base64 salt and hash. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const params = { n: DEFAULT_SCRYPT_N, r: DEFAULT_SCRYPT_R, p: DEFAULT_SCRYPT_P };
  const key = await deriveKey(password, salt, KEY_BYTES, params);
  const parts = [params.n, params.r, params.p, salt.toString('base64'), key.toString('base64')];
  return `scrypt$${parts.join('$')}`;
}

/**
 * Parses a hash written by `hashPassword`. Raises EdgeError EDGE_ADMIN_HASH_INVALID naming the
 * problem (never echoing the hash) when the text is not one.
 */
export function parsePasswordHash(text: string): PasswordHash {
  const parts = text.trim().split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') {
    throw invalidHash('expected scrypt$N$r$p$salt$hash');
  }

  const [n, r, p] = parts.slice(1, 4).map((part) => (/^\d+$/.test(part) ? Number(part) : NaN));
  const salt = decodeBase64(parts[4]!);
  const key = decodeBase64(parts[5]!);
  if (!isPowerOfTwo(n!) || n! < MIN_SCRYPT_N || n! > MAX_SCRYPT_N) {
    throw invalidHash(`N must be a power of two from ${MIN_SCRYPT_N} to ${MAX_SCRYPT_N}`);
  }
  if (!(r! >= 1 && r! <= MAX_SCRYPT_R) || !(p! >= 1 && p! <= MAX_SCRYPT_P)) {
    throw invalidHash(`r must be 1 to ${MAX_SCRYPT_R} and p 1 to ${MAX_SCRYPT_P}`);
  }
  if (salt === undefined || salt.length < 8 || key === undefined || key.length < MIN_KEY_BYTES) {
    throw invalidHash('salt or hash is not base64 or too short');
  }

  return { n: n!, r: r!, p: p!, salt, key };
}

/** Checks `password` against `hash` in constant time. An empty password never matches. */
export async function verifyPassword(password: string, hash: PasswordHash): Promise<boolean> {
  if (password.length === 0) return false;

  const key = await deriveKey(password, hash.salt, hash.key.length, hash);
  return timingSafeEqual(key, hash.key);
}

function deriveKey(
  password: string,
  salt: Buffer,
  length: number,
  params: { n: number; r: number; p: number },
): Promise<Buffer> {
  // scrypt needs about 128 * N * r bytes; Node's default maxmem (32 MiB) is just too small.
  const options: ScryptOptions = {
    N: params.n,
    r: params.r,
    p: params.p,
    maxmem: 256 * params.n * params.r + 1024 * 1024,
  };
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFC'), salt, length, options, (error, key) =>
      error === null ? resolve(key) : reject(error),
    );
  });
}

function decodeBase64(text: string): Buffer | undefined {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text)) return undefined;
  return Buffer.from(text, 'base64');
}

function isPowerOfTwo(value: number): boolean {
  return Number.isInteger(value) && value > 1 && (value & (value - 1)) === 0;
}

function invalidHash(problem: string): EdgeError {
  return new EdgeError('EDGE_ADMIN_HASH_INVALID', `invalid admin password hash: ${problem}`, {
    status: 500,
  });
}
