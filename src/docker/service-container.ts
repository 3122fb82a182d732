import type { EdgeConfig } from '../config/schema.ts';
import type { ContainerInspect, DockerEngine, ImageInspect } from './engine.ts';
import { SERVICE_LABEL } from './recreate.ts';

/**
 * Finds the running container of a service: the one with the configured name, else a running
 * container the edge labelled for the service (a deploy interrupted before its final rename).
 * Returns undefined when none runs.
 */
export async function findServiceContainer(
  engine: DockerEngine,
  service: string,
  containerName: string,
): Promise<ContainerInspect | undefined> {
  const byName = await engine.inspectContainer(containerName);
  if (byName?.State.Running) return byName;

  const summaries = await engine.listContainers();
  const labelled = summaries
    .filter((summary) => summary.Labels?.[SERVICE_LABEL] === service && summary.State === 'running')
    .sort((a, b) => b.Created - a.Created);
  for (const summary of labelled) {
    const info = await engine.inspectContainer(summary.Id);
    if (info?.State.Running) return info;
  }
  return undefined;
}

/** Name of the Docker network the edge reaches `service` on, from the site that routes to it. */
export function serviceNetwork(config: EdgeConfig, service: string): string | undefined {
  const site = config.sites.find((candidate) =>
    candidate.routes.some((route) => route.service === service),
  );
  return site?.network;
}

/** First host of the site that routes to `service`: the Host a health probe sends by default. */
export function serviceHost(config: EdgeConfig, service: string): string | undefined {
  const site = config.sites.find((candidate) =>
    candidate.routes.some((route) => route.service === service),
  );
  return site?.hosts[0];
}

/**
 * Returns the container's IP address on `network`, or on its first network with an address
 * when `network` is not given. Undefined when the container has no address there.
 */
export function containerAddress(info: ContainerInspect, network?: string): string | undefined {
  const networks = info.NetworkSettings.Networks ?? {};
  if (network !== undefined) {
    const settings = networks[network] ?? findNetworkById(networks, network);
    return settings?.IPAddress || undefined;
  }
  for (const settings of Object.values(networks)) {
    if (settings.IPAddress) return settings.IPAddress;
  }
  return undefined;
}

function findNetworkById(
  networks: NonNullable<ContainerInspect['NetworkSettings']['Networks']>,
  id: string,
): (typeof networks)[string] | undefined {
  return Object.values(networks).find((settings) => settings.NetworkID === id);
}

/** URL origin of a container address, with IPv6 addresses in brackets. */
export function containerOrigin(address: string, port: number): string {
  return address.includes(':') ? `http://[${address}]:${port}` : `http://${address}:${port}`;
}

/** Container name without the leading slash the Engine reports. */
export function containerName(info: ContainerInspect): string {
  return info.Name.replace(/^\//, '');
}

/** Digest under which `image` was pulled from `repository` (`sha256:...`), if it was. */
export function repoDigest(
  image: ImageInspect | undefined,
  repository: string,
): string | undefined {
  const digests = image?.RepoDigests ?? [];
  const match = digests.find((entry) => entry.startsWith(`${repository}@`)) ?? digests[0];
  return match?.split('@')[1];
}
