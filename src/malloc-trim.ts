import { existsSync } from 'node:fs';
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
    const addon = createRequire(import.meta.url)(path) as { trim?: unknown };
    if (typeof addon.trim !== 'function') {
      return { trim: undefined, reason: `${path} has no trim function` };
    }
    return { trim: addon.trim as () => boolean };
  } catch (error) {
    return { trim: undefined, reason: `loading ${path} failed: ${errorMessage(error)}` };
  }
}
