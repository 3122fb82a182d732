import { ipaddr } from '../packages.ts';
import { EDGE_PREFIX } from '../edge-api.ts';

const PATH_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const DOMAIN_LABEL = '[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?';

/**
 * An image repository without tag or digest, as in Docker's reference grammar: an optional
 * registry host with port, then lowercase path components (`ghcr.io/owner/app`,
 * `127.0.0.1:5000/team/app`, `nginx`). A registry given as an IPv6 literal is not accepted.
 */
export const IMAGE_REPOSITORY = new RegExp(
  `^(?:${DOMAIN_LABEL}(?:\\.${DOMAIN_LABEL})*(?::[0-9]+)?/)?${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`,
);

/**
 * True for an IPv4 or IPv6 address or CIDR range. IPv4 must be written as four decimal parts,
 * so shorthand forms such as `10.1` or `0x0a000001` that some parsers accept are rejected.
 */
export function isAddressOrRange(value: string): boolean {
  if (value.includes('/')) {
    return ipaddr.IPv6.isValidCIDR(value) || ipaddr.IPv4.isValidCIDRFourPartDecimal(value);
  }
  return isIpAddress(value);
}

/** True for an IPv6 address or an IPv4 address written as four decimal parts. */
export function isIpAddress(value: string): boolean {
  return ipaddr.IPv6.isValid(value) || ipaddr.IPv4.isValidFourPartDecimal(value);
}

/**
 * Returns why a route path can never match a request, or undefined for a usable one. Requests
 * are matched on their decoded path with `\` read as `/`, duplicate slashes collapsed and dot
 * segments resolved. The edge handles every path below `/_edge` itself, in any letter case.
 */
export function routePathProblem(path: string): string | undefined {
  if (!path.startsWith('/')) return 'must start with /';
  if (/[?#\s]/.test(path)) return 'must not contain ?, # or spaces';
  if (/[%\\]/.test(path)) {
    return 'must not contain % or \\, because requests are matched on their decoded path';
  }

  const segments = path.slice(1).split('/');
  const lastIndex = segments.length - 1;
  const unnormalised = segments.some(
    (segment, index) =>
      segment === '.' || segment === '..' || (segment === '' && index < lastIndex),
  );
  if (unnormalised) return 'must be normalised, without empty, . or .. segments, such as /api/v1';

  const lower = path.toLowerCase();
  if (lower === EDGE_PREFIX || lower.startsWith(`${EDGE_PREFIX}/`)) {
    return `must not be ${EDGE_PREFIX} or below it, because that prefix is reserved for the edge's own API`;
  }
  return undefined;
}
