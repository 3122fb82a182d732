import { fileURLToPath } from 'node:url';
import { loadAddon } from './native.ts';

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
 * heaps to the system and reports whether there were any. A C library other than glibc (musl)
 * fails to load it, and the edge then runs without it.
 */
export function loadMallocTrim(path: string = MALLOC_TRIM_ADDON): MallocTrimLoad {
  const loaded = loadAddon<() => boolean>(path, 'trim');
  return loaded.fn ? { trim: loaded.fn } : { trim: undefined, reason: loaded.reason };
}
