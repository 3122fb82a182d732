/**
 * Readers for the raw configuration input, before validation. Each returns undefined or an
 * empty list when the value is missing or of another type, so checks over the raw input can
 * skip the parts the schema reports as malformed.
 */

/** True for a plain object such as a YAML mapping, false for lists and scalars. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

export function valueAt(parent: unknown, key: string): unknown {
  if (!isRecord(parent) || !Object.hasOwn(parent, key)) return undefined;
  return parent[key];
}

export function listAt(parent: unknown, key: string): unknown[] {
  const value = valueAt(parent, key);
  return Array.isArray(value) ? value : [];
}
