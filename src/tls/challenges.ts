import type { ChallengeResponder } from './issuer.ts';

interface PendingChallenge {
  host: string;
  keyAuthorization: string;
}

/** Pending HTTP-01 answers, read by the port-80 listener through `response`. */
export class ChallengeStore implements ChallengeResponder {
  private readonly pending = new Map<string, PendingChallenge>();

  add(host: string, token: string, keyAuthorization: string): void {
    this.pending.set(token, { host: normalizeHost(host), keyAuthorization });
  }

  remove(token: string): void {
    this.pending.delete(token);
  }

  /** Key authorization for `token` when it was issued for `host` (any case, with or without port). */
  response(host: string, token: string): string | undefined {
    const entry = this.pending.get(token);
    if (entry === undefined || entry.host !== normalizeHost(host)) return undefined;

    return entry.keyAuthorization;
  }
}

/** Lowercases a Host header value and drops its port and trailing dot. */
export function normalizeHost(host: string): string {
  let name = host.trim().toLowerCase();
  if (name.startsWith('[')) return name.slice(0, name.indexOf(']') + 1);

  const colon = name.lastIndexOf(':');
  if (colon !== -1 && name.indexOf(':') === colon) name = name.slice(0, colon);
  return name.replace(/\.$/, '');
}
