import { fileURLToPath } from 'node:url';
import { loadAddon } from './native.ts';

/** Path of the compiled addon; src/ and dist/ both sit next to native/. */
export const LOW_MEMORY_ADDON = fileURLToPath(
  new URL('../native/build/low-memory.node', import.meta.url),
);

/** Outcome of loading the addon: V8's low-memory notification, or why the edge runs without it. */
export type LowMemoryLoad = { notify: () => void } | { notify: undefined; reason: string };

/**
 * Loads the addon that calls V8's Isolate::LowMemoryNotification(). An addon built with the
 * headers of another Node major version fails to load, and the edge then runs without it.
 */
export function loadLowMemoryNotification(path: string = LOW_MEMORY_ADDON): LowMemoryLoad {
  const loaded = loadAddon<() => void>(path, 'lowMemoryNotification');
  return loaded.fn ? { notify: loaded.fn } : { notify: undefined, reason: loaded.reason };
}
