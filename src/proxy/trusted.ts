import type { IPv4, IPv6 } from 'ipaddr.js';
import { ipaddr } from '../packages.ts';
import { ConfigError } from '../errors.ts';

const TRUST_CACHE_LIMIT = 4096;

type Range = [IPv4 | IPv6, number];

/** The peers whose X-Forwarded-* headers the edge keeps: addresses or CIDR ranges. */
export class TrustedProxies {
  private readonly ranges: Range[];
  private readonly cache = new Map<string, boolean>();

  constructor(entries: readonly string[]) {
    this.ranges = entries.map(parseRange);
  }

  /** True when `address` (as Node reports a peer, IPv4-mapped or not) is in a trusted range. */
  has(address: string): boolean {
    if (this.ranges.length === 0) return false;

    const cached = this.cache.get(address);
    if (cached !== undefined) return cached;

    const trusted = this.check(address);
    if (this.cache.size >= TRUST_CACHE_LIMIT) this.cache.clear();
    this.cache.set(address, trusted);
    return trusted;
  }

  private check(address: string): boolean {
    if (!ipaddr.isValid(address)) return false;
    const parsed = ipaddr.process(address);
    return this.ranges.some(
      ([range, bits]) => range.kind() === parsed.kind() && parsed.match(range, bits),
    );
  }
}

function parseRange(entry: string): Range {
  try {
    if (entry.includes('/')) {
      return ipaddr.parseCIDR(entry);
    }
    const address = ipaddr.process(entry);
    return [address, address.kind() === 'ipv4' ? 32 : 128];
  } catch {
    throw new ConfigError(
      `invalid config: trustedProxies: ${entry} is not an IP address or CIDR range`,
      [`trustedProxies: ${entry} is not an IP address or CIDR range`],
    );
  }
}

/** Returns the peer address as logged and forwarded, IPv4-mapped IPv6 (`::ffff:1.2.3.4`) as IPv4. */
export function peerAddress(remoteAddress: string | undefined): string {
  if (remoteAddress === undefined) return '';
  if (remoteAddress.startsWith('::ffff:') && remoteAddress.includes('.'))
    return remoteAddress.slice(7);
  return remoteAddress;
}
