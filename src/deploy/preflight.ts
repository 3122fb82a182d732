import type { ServiceConfig } from '../config/schema.ts';
import type { ContainerInspect, DockerEngine, ImageInspect } from '../docker/engine.ts';
import { userNetworks } from '../docker/recreate.ts';
import { containerName, findServiceContainer } from '../docker/service-container.ts';
import { EdgeError } from '../errors.ts';

/** The container a deploy replaces and the image it runs. */
export interface CurrentContainer {
  info: ContainerInspect;
  image: ImageInspect | undefined;
}

/**
 * Finds the running container of `service` and checks that a second copy can run next to it.
 * That needs a user-defined network that still exists, no published host port and no fixed IP
 * address, because the old container keeps those during the swap.
 */
export async function inspectCurrent(
  engine: DockerEngine,
  name: string,
  service: ServiceConfig,
): Promise<CurrentContainer> {
  const info = await findServiceContainer(engine, name, service.container);
  if (info === undefined) {
    throw preflightError(
      `no running container for service ${name} (expected a container named ${service.container}); start it once with docker compose up -d`,
      name,
    );
  }

  checkNetworks(info, name);
  checkHostPorts(info, name);
  for (const network of userNetworks(info).endpoints.keys()) {
    if ((await engine.inspectNetwork(network)) === undefined) {
      throw preflightError(
        `network ${network} of container ${containerName(info)} not found; create it (docker network create ${network}) or run docker compose up -d`,
        name,
      );
    }
  }
  return { info, image: await engine.inspectImage(info.Image) };
}

function checkNetworks(info: ContainerInspect, name: string): void {
  const mode = info.HostConfig.NetworkMode ?? '';
  const { endpoints } = userNetworks(info);
  if (mode === 'host' || mode === 'none' || mode.startsWith('container:') || endpoints.size === 0) {
    throw preflightError(
      `container ${containerName(info)} uses network mode ${mode || 'none'}; deploys need the service on a user-defined network`,
      name,
    );
  }

  for (const [network, endpoint] of endpoints) {
    const fixed = endpoint.IPAMConfig as { IPv4Address?: string; IPv6Address?: string } | undefined;
    if (fixed?.IPv4Address || fixed?.IPv6Address) {
      throw preflightError(
        `container ${containerName(info)} has a fixed IP address on network ${network}; old and new container run side by side during a deploy, so remove ipv4_address/ipv6_address`,
        name,
      );
    }
  }
}

function checkHostPorts(info: ContainerInspect, name: string): void {
  const bindings = Object.entries(info.HostConfig.PortBindings ?? {}) as [
    string,
    { HostPort?: string }[] | null,
  ][];
  const published = bindings.filter(([, hosts]) => (hosts ?? []).some((host) => host.HostPort));
  if (published.length === 0) return;

  throw preflightError(
    `container ${containerName(info)} publishes host port(s) for ${published.map(([port]) => port).join(', ')}; old and new container run side by side during a deploy, so remove the ports: mapping (the edge reaches the container on its Docker network)`,
    name,
  );
}

function preflightError(message: string, service: string): EdgeError {
  return new EdgeError('EDGE_DEPLOY_PRECONDITION', message, { status: 409, context: { service } });
}
