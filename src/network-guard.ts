import type { IPv4, IPv6 } from 'ipaddr.js';
import { ipaddr } from './packages.ts';
import type { SiteConfig } from './config/schema.ts';
import type { EdgeContext, NetworkGuard } from './context.ts';
import { EdgeError, errorMessage } from './errors.ts';

/** Time one Docker API call may take while the guard learns the networks at start-up. */
export const DEFAULT_NETWORK_INSPECT_TIMEOUT_MS = 10_000;

type Address = IPv4 | IPv6;

/** Addresses of one Docker network named by a site. */
export interface GuardedNetwork {
  name: string;
  /** Address ranges of the network, such as `[10.0.5.0, 24]`. */
  subnets: [Address, number][];
  /** Host-side addresses of the network's bridge: traffic from the host, not from a container. */
  gateways: Address[];
}

/** The part of a Docker network inspection the guard reads. */
export interface NetworkInspection {
  Name?: string;
  IPAM?: { Config?: { Subnet?: string; Gateway?: string }[] | null } | null;
}

/** Reads a network by name. Production uses dockerode's `getNetwork(name).inspect()`. */
export type InspectNetwork = (name: string) => Promise<NetworkInspection>;

/**
 * Rejects requests that would let the edge bridge two Docker networks. A client whose address
 * lies in the subnet of a site's network is a container on that network, so it may only reach
 * sites on the same network. The network's gateway is the host itself: Docker's userland proxy
 * connects from there for published ports, so a gateway address counts as an outside client.
 */
export class SubnetNetworkGuard implements NetworkGuard {
  readonly networks: readonly GuardedNetwork[];

  constructor(networks: GuardedNetwork[]) {
    this.networks = networks;
  }

  allows(clientAddress: string, site: SiteConfig): boolean {
    const address = parseAddress(clientAddress);
    // An address the edge cannot read cannot be placed outside the guarded networks.
    if (address === undefined) return false;

    const containing = this.networks.filter((network) =>
      network.subnets.some((s) => inRange(address, s)),
    );
    if (containing.length === 0) return true;

    const fromHost = containing.some((network) =>
      network.gateways.some((g) => sameAddress(g, address)),
    );
    if (fromHost) return true;

    return containing.some((network) => network.name === site.network);
  }
}

/**
 * Learns from Docker the subnets and gateways of every network named by a site and returns a
 * guard over them, or undefined when no site names a network. A named network that Docker does
 * not know, or an unreachable Docker socket, fails start-up: a guard that silently let every
 * container through would be worse than no start.
 */
export async function createNetworkGuard(context: EdgeContext): Promise<NetworkGuard | undefined> {
  const names = networkNames(context.config.sites);
  if (names.length === 0) return undefined;

  // Loaded only when a site names a network, because dockerode and its dependencies cost
  // several MB of memory.
  const { default: Docker } = await import('dockerode');
  const docker = new Docker({
    socketPath: context.config.docker.socket,
    timeout: DEFAULT_NETWORK_INSPECT_TIMEOUT_MS,
  });
  const inspect: InspectNetwork = (name) => docker.getNetwork(name).inspect();
  const networks = await learnNetworks(names, inspect, context.config.docker.socket);

  context.logger.info({ networks: networks.map(describeNetwork) }, 'network guard ready');
  return new SubnetNetworkGuard(networks);
}

/** Inspects each network and reads its address ranges and gateways. */
export async function learnNetworks(
  names: string[],
  inspect: InspectNetwork,
  socket = 'the Docker socket',
): Promise<GuardedNetwork[]> {
  const networks: GuardedNetwork[] = [];
  for (const name of names) {
    let info: NetworkInspection;
    try {
      info = await inspect(name);
    } catch (error) {
      throw unknownNetwork(name, socket, error);
    }
    networks.push(readNetwork(name, info));
  }
  return networks;
}

/** Distinct network names of the sites, in config order. */
export function networkNames(sites: readonly SiteConfig[]): string[] {
  const names = sites.map((site) => site.network).filter((name) => name !== undefined);
  return [...new Set(names)];
}

function readNetwork(name: string, info: NetworkInspection): GuardedNetwork {
  const subnets: [Address, number][] = [];
  const gateways: Address[] = [];
  for (const entry of info.IPAM?.Config ?? []) {
    if (entry.Subnet === undefined || !ipaddr.isValidCIDR(entry.Subnet)) continue;
    const subnet = ipaddr.parseCIDR(entry.Subnet);
    subnets.push(subnet);
    gateways.push(readGateway(entry.Gateway, subnet));
  }

  if (subnets.length === 0) {
    throw new EdgeError(
      'EDGE_NETWORK_NO_SUBNET',
      `network ${name} has no subnet in Docker's IPAM config`,
      {
        context: { network: name },
      },
    );
  }
  return { name, subnets, gateways };
}

/** Docker gives the bridge the first address of the subnet when the network sets no gateway. */
function readGateway(gateway: string | undefined, subnet: [Address, number]): Address {
  const text = gateway?.split('/')[0];
  if (text !== undefined && ipaddr.isValid(text)) return ipaddr.parse(text);

  const bytes = networkAddress(subnet).toByteArray();
  bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) + 1;
  return ipaddr.fromByteArray(bytes);
}

function networkAddress([address, bits]: [Address, number]): Address {
  const cidr = `${address.toString()}/${bits}`;
  return address.kind() === 'ipv4'
    ? ipaddr.IPv4.networkAddressFromCIDR(cidr)
    : ipaddr.IPv6.networkAddressFromCIDR(cidr);
}

/** Parses a socket address. An IPv4-mapped IPv6 address (`::ffff:10.0.0.5`) becomes plain IPv4. */
function parseAddress(text: string): Address | undefined {
  const withoutZone = text.split('%')[0] ?? text;
  if (!ipaddr.isValid(withoutZone)) return undefined;
  return ipaddr.process(withoutZone);
}

function inRange(address: Address, [base, bits]: [Address, number]): boolean {
  if (address.kind() !== base.kind()) return false;
  return address.match(base, bits);
}

function sameAddress(a: Address, b: Address): boolean {
  return a.kind() === b.kind() && a.toNormalizedString() === b.toNormalizedString();
}

function describeNetwork(network: GuardedNetwork): Record<string, unknown> {
  return {
    name: network.name,
    subnets: network.subnets.map(([base, bits]) => `${base.toString()}/${bits}`),
    gateways: network.gateways.map((gateway) => gateway.toString()),
  };
}

function unknownNetwork(name: string, socket: string, error: unknown): EdgeError {
  const status = (error as { statusCode?: number }).statusCode;
  const reason =
    status === 404
      ? 'not found: create it (docker network create, or start the Compose stack) or remove `network` from the site'
      : `Docker unreachable at ${socket}: ${errorMessage(error)}`;
  return new EdgeError('EDGE_NETWORK_UNKNOWN', `inspecting network ${name}: ${reason}`, {
    status: 503,
    context: { network: name, socket, dockerStatus: status },
    cause: error,
  });
}
