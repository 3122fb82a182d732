import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { errorMessage } from './errors.ts';

/**
 * Path of the compiled addon. Both src/ and dist/ sit next to native/, in the repository and in
 * the image (/app), so one relative path serves both.
 */
export const MALLOC_TRIM_ADDON = fileURLToPath(
  new URL('../native/build/malloc-trim.node', import.meta.url),
);

/** Outcome of loading the addon: the trim function, or why the edge runs without it. */
export type MallocTrimLoad = { trim: () => boolean } | { trim: undefined; reason: string };

/**
 * Loads the addon that calls glibc's malloc_trim(0), which returns the free pages inside glibc's
 * heaps to the system and reports whether there were any. The image builds it; a development
 * checkout has it after `npm run build:native`. A C library other than glibc (musl) fails to load
 * it, and the edge then runs without it.
 */
export function loadMallocTrim(path: string = MALLOC_TRIM_ADDON): MallocTrimLoad {
  if (!existsSync(path)) {
    return { trim: undefined, reason: `${path} not found (build it with npm run build:native)` };
  }
  try {
    const truncated = truncatedElf(readFileSync(path));
    if (truncated !== undefined) return { trim: undefined, reason: `${path} is ${truncated}` };
    const addon = createRequire(import.meta.url)(path) as { trim?: unknown };
    if (typeof addon.trim !== 'function') {
      return { trim: undefined, reason: `${path} has no trim function` };
    }
    return { trim: addon.trim as () => boolean };
  } catch (error) {
    return { trim: undefined, reason: `loading ${path} failed: ${errorMessage(error)}` };
  }
}

/**
 * Checks that a 64-bit little-endian ELF file contains every byte its headers point to, and returns
 * what is missing. dlopen maps a truncated file, such as one cut short by an interrupted copy,
 * and the process dies with SIGBUS, which no try/catch can handle. Other files are left to
 * dlopen, which fails on them with an error.
 */
export function truncatedElf(file: Buffer): string | undefined {
  const isElf64LittleEndian =
    file.length >= 64 && file.readUInt32BE(0) === 0x7f454c46 && file[4] === 2 && file[5] === 1;
  if (!isElf64LittleEndian) return undefined;

  const programHeaders = Number(file.readBigUInt64LE(32));
  const sectionHeaders = Number(file.readBigUInt64LE(40));
  const programHeaderSize = file.readUInt16LE(54);
  const programHeaderCount = file.readUInt16LE(56);
  let end = Math.max(
    programHeaders + programHeaderSize * programHeaderCount,
    sectionHeaders + file.readUInt16LE(58) * file.readUInt16LE(60),
  );
  if (programHeaders + programHeaderSize * programHeaderCount <= file.length) {
    for (let i = 0; i < programHeaderCount; i++) {
      const header = programHeaders + i * programHeaderSize;
      const segmentEnd = Number(
        file.readBigUInt64LE(header + 8) + file.readBigUInt64LE(header + 32),
      );
      end = Math.max(end, segmentEnd);
    }
  }
  return end > file.length ? `truncated: ${file.length} of ${end} bytes` : undefined;
}
