import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { errorMessage } from './errors.ts';

/** Outcome of loading an addon: the function it exports, or why the edge runs without it. */
export type AddonLoad<F> = { fn: F; reason?: undefined } | { fn: undefined; reason: string };

/** Largest addon file read; the built ones are about 16 KiB. */
const MAX_ADDON_BYTES = 1024 * 1024;

/**
 * Loads a compiled addon from native/build and returns its function `name`. The image builds the
 * addons; a development checkout has them after `npm run build:native`. Where one cannot load (a
 * C library other than glibc, another CPU, another Node version), the reason is returned and the
 * edge runs without it.
 *
 * The file must match the SHA-256 that the build writes next to it. dlopen maps a damaged shared
 * object (cut short, or with zeros where code was) and the process dies with SIGBUS or SIGSEGV,
 * which no try/catch can handle.
 */
export function loadAddon<F>(path: string, name: string): AddonLoad<F> {
  const checksumPath = `${path}.sha256`;
  let addon: Buffer;
  let expected: string;
  try {
    addon = readRegularFile(path);
    expected = readRegularFile(checksumPath).toString('latin1').trim();
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    const detail = missing ? 'not found' : `cannot be read: ${errorMessage(error)}`;
    const file = missing && existsSync(path) ? checksumPath : path;
    return { fn: undefined, reason: `${file} ${detail} (build it with npm run build:native)` };
  }

  const actual = createHash('sha256').update(addon).digest('hex');
  if (actual !== expected) {
    return {
      fn: undefined,
      reason: `${path} does not match ${checksumPath}; rebuild it with npm run build:native`,
    };
  }
  if (!elfFits(addon)) {
    return {
      fn: undefined,
      reason: `${path} is cut short: its ELF headers reach past the end of the file; rebuild it with npm run build:native`,
    };
  }
  const machine = elfMachine(addon);
  const expectedMachine = ELF_MACHINES[process.arch];
  if (machine !== undefined && expectedMachine !== undefined && machine !== expectedMachine) {
    return {
      fn: undefined,
      reason: `${path} is built for another CPU (ELF machine ${machine}, this is ${process.arch})`,
    };
  }
  try {
    const exports = createRequire(import.meta.url)(path) as Record<string, unknown>;
    if (typeof exports[name] !== 'function') {
      return { fn: undefined, reason: `${path} has no ${name} function` };
    }
    return { fn: exports[name] as F };
  } catch (error) {
    return { fn: undefined, reason: `loading ${path} failed: ${errorMessage(error)}` };
  }
}

/**
 * ELF machine numbers of the CPUs Node's Linux builds run on. glibc reports an addon built for
 * another CPU as "No such file or directory", so the edge names the mismatch itself.
 */
const ELF_MACHINES: Partial<Record<string, number>> = { x64: 62, arm64: 183, ia32: 3, arm: 40 };

/** Returns the machine field of an ELF file, or undefined for any other file. */
function elfMachine(file: Buffer): number | undefined {
  if (file.length < 20 || file.readUInt32BE(0) !== 0x7f454c46) return undefined;
  // e_machine follows the 16-byte e_ident and the 2-byte e_type, in the file's byte order.
  return file[5] === 2 ? file.readUInt16BE(18) : file.readUInt16LE(18);
}

/** ELF program header type of a segment dlopen maps from the file. */
const PT_LOAD = 1;

/**
 * Checks that the program and section header tables and every loaded segment of a 64-bit
 * little-endian ELF file lie inside the file. dlopen maps segments past the end of a cut file,
 * and the process dies with SIGBUS when it touches them, even when the checksum was rewritten to
 * match. Other files pass unchecked.
 */
function elfFits(file: Buffer): boolean {
  if (file.length < 64 || file.readUInt32BE(0) !== 0x7f454c46 || file[4] !== 2 || file[5] !== 1) {
    return true;
  }
  const size = BigInt(file.length);
  const programOffset = file.readBigUInt64LE(0x20);
  const sectionOffset = file.readBigUInt64LE(0x28);
  const programEntry = file.readUInt16LE(0x36);
  const programCount = file.readUInt16LE(0x38);
  const sectionEntry = file.readUInt16LE(0x3a);
  const sectionCount = file.readUInt16LE(0x3c);
  if (programOffset + BigInt(programEntry * programCount) > size) return false;
  if (sectionCount > 0 && sectionOffset + BigInt(sectionEntry * sectionCount) > size) return false;
  for (let i = 0; i < programCount; i++) {
    const entry = Number(programOffset) + i * programEntry;
    if (entry + 0x28 > file.length) return false;
    if (file.readUInt32LE(entry) !== PT_LOAD) continue;
    const offset = file.readBigUInt64LE(entry + 0x08);
    const fileSize = file.readBigUInt64LE(entry + 0x20);
    if (offset + fileSize > size) return false;
  }
  return true;
}

/** Reads a regular file of at most MAX_ADDON_BYTES, never a device, a FIFO or a directory. */
function readRegularFile(path: string): Buffer {
  const stats = statSync(path);
  if (!stats.isFile()) throw new Error('not a regular file');
  if (stats.size > MAX_ADDON_BYTES) throw new Error(`${stats.size} bytes, over ${MAX_ADDON_BYTES}`);
  return readFileSync(path);
}
