import type { SecureContext } from 'node:tls';
import { normalizeHost } from './challenges.ts';

/**
 * SecureContexts by host name, read by the SNI callback on every handshake. Replacing an entry
 * is all a renewal needs to do: the next handshake picks the new certificate.
 */
export class SniCache {
  private readonly contexts = new Map<string, SecureContext>();

  set(names: string[], context: SecureContext): void {
    for (const name of names) this.contexts.set(name.toLowerCase(), context);
  }

  delete(names: string[]): void {
    for (const name of names) this.contexts.delete(name.toLowerCase());
  }

  /** Context for an exact name, else for a wildcard `*.parent` one label up. */
  lookup(servername: string): SecureContext | undefined {
    const name = normalizeHost(servername);
    const exact = this.contexts.get(name);
    if (exact !== undefined) return exact;

    const dot = name.indexOf('.');
    return dot === -1 ? undefined : this.contexts.get(`*${name.slice(dot)}`);
  }
}
