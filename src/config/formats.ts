import ipaddr from 'ipaddr.js';

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
