import type { SiteConfig } from '../config/schema.ts';

/** Upper bound of the raw-Host cache; a scanner sending random names cannot grow it further. */
const HOST_CACHE_LIMIT = 1024;

/** Result of looking up a Host header: the site, or why there is none. */
export type HostMatch =
  | { kind: 'site'; host: string; site: SiteConfig }
  | { kind: 'unknown'; host: string }
  | { kind: 'invalid' };

const INVALID: HostMatch = { kind: 'invalid' };
const NAME_CHARS = /^[a-z0-9_.-]+$/;
const IPV6_CHARS = /^[0-9a-f:.]+$/;

/**
 * Normalises a Host header value: lower case, no port, no trailing dot, IPv6 literals kept in
 * brackets. Returns undefined for a value that is not a host name or an address.
 */
export function normaliseHost(value: string): string | undefined {
  if (value.length === 0 || value.length > 260) return undefined;
  const lower = value.toLowerCase();

  if (lower.charCodeAt(0) === 91 /* [ */) {
    const end = lower.indexOf(']');
    if (end < 3) return undefined;
    const address = lower.slice(1, end);
    if (!IPV6_CHARS.test(address) || !validPort(lower.slice(end + 1))) return undefined;
    return `[${address}]`;
  }

  const colon = lower.indexOf(':');
  let name = colon === -1 ? lower : lower.slice(0, colon);
  if (colon !== -1 && !validPort(lower.slice(colon))) return undefined;
  if (name.endsWith('.')) name = name.slice(0, -1);
  if (name.length === 0 || !NAME_CHARS.test(name) || name.includes('..')) return undefined;
  return name;
}

/** Largest TCP port number. */
const MAX_PORT = 65_535;

/** `:8443` after a host (digits, 1 to 65535), or nothing. */
function validPort(rest: string): boolean {
  if (rest.length === 0) return true;
  if (rest.charCodeAt(0) !== 58 /* : */ || rest.length < 2 || rest.length > 6) return false;

  let port = 0;
  for (let i = 1; i < rest.length; i++) {
    const code = rest.charCodeAt(i);
    if (code < 48 || code > 57) return false;
    port = port * 10 + (code - 48);
  }
  return port >= 1 && port <= MAX_PORT;
}

/**
 * Returns the host a request is routed on and forwarded with: the authority of an absolute-form
 * target, which replaces the Host header (RFC 9112 section 3.2.2), else the Host header. Returns
 * undefined when the request must get 400: RFC 9112 section 3.2 requires exactly one valid Host
 * line even when the target carries an authority.
 */
export function requestHost(
  table: HostTable,
  authority: string | undefined,
  hostCount: number,
  host: string | undefined,
): string | undefined {
  if (hostCount !== 1 || host === undefined) return undefined;
  if (authority === undefined) return host;
  return table.match(host).kind === 'invalid' ? undefined : authority;
}

/**
 * Finds the site of a Host header. Exact names win over wildcards (`*.example.com` matches one
 * label, as in TLS certificates). Results are cached by the raw header value because the same few
 * values arrive on nearly every request.
 */
export class HostTable {
  private readonly exact = new Map<string, SiteConfig>();
  private readonly wildcards: { suffix: string; site: SiteConfig }[] = [];
  private readonly cache = new Map<string, HostMatch>();

  constructor(sites: readonly SiteConfig[]) {
    for (const site of sites) {
      for (const host of site.hosts) {
        if (host.startsWith('*.')) this.wildcards.push({ suffix: host.slice(1), site });
        else this.exact.set(host, site);
      }
    }
  }

  /** Looks up a raw Host header value. */
  match(value: string): HostMatch {
    const cached = this.cache.get(value);
    if (cached !== undefined) return cached;

    const result = this.resolve(value);
    if (this.cache.size >= HOST_CACHE_LIMIT) this.cache.clear();
    this.cache.set(value, result);
    return result;
  }

  /** Looks up an already normalised name, such as a TLS server name. */
  siteOf(host: string): SiteConfig | undefined {
    const site = this.exact.get(host);
    if (site !== undefined) return site;

    const dot = host.indexOf('.');
    if (dot <= 0) return undefined;
    const suffix = host.slice(dot);
    for (const wildcard of this.wildcards) {
      if (wildcard.suffix === suffix) return wildcard.site;
    }
    return undefined;
  }

  private resolve(value: string): HostMatch {
    const host = normaliseHost(value);
    if (host === undefined) return INVALID;

    const site = this.siteOf(host);
    return site === undefined ? { kind: 'unknown', host } : { kind: 'site', host, site };
  }
}
