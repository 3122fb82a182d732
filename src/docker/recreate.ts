import type {
  ContainerInspect,
  CreateContainerOptions,
  DockerEngine,
  EndpointConfig,
  ImageInspect,
} from './engine.ts';

/** Labels the edge puts on containers it creates, so recovery and discovery can find them. */
export const SERVICE_LABEL = 'caliente-edge.service';
export const DEPLOY_LABEL = 'caliente-edge.deploy';
export const ROLE_LABEL = 'caliente-edge.role';

/** The container configuration fields the recreate reads; the Engine sends all of them. */
type ContainerConfig = ContainerInspect['Config'] & { StopSignal?: string };

/** Create options for a copy of a container that runs another image. */
export interface RecreatePlan {
  options: CreateContainerOptions;
  /** The network given at create time (engines before API 1.44 accept only one). */
  primaryNetwork: string;
  /** Networks to connect after create and before start, with their endpoint settings. */
  extraNetworks: [string, EndpointConfig][];
}

/**
 * Builds the create options for a container that runs `image` with the configuration of the
 * running container `current`. Inspect returns the merged configuration, so every value that
 * came from the old image (`oldImage`) is dropped and the new image supplies its own. Values the
 * user set (Compose env, labels, restart policy, mounts, networks and aliases) are kept.
 */
export function planRecreate(
  current: ContainerInspect,
  oldImage: ImageInspect | undefined,
  image: string,
  name: string,
  labels: Record<string, string>,
): RecreatePlan {
  const config = current.Config as ContainerConfig;
  const defaults = (oldImage?.Config ?? {}) as Partial<ContainerConfig>;
  const { primaryNetwork, endpoints } = userNetworks(current);

  const options: CreateContainerOptions = {
    name,
    Image: image,
    Env: subtractList(config.Env, defaults.Env),
    Labels: { ...subtractLabels(config.Labels, defaults.Labels), ...labels },
    Cmd: sameAs(config.Cmd, defaults.Cmd) ? undefined : config.Cmd,
    Entrypoint: sameAs(config.Entrypoint, defaults.Entrypoint) ? undefined : config.Entrypoint,
    WorkingDir: config.WorkingDir === defaults.WorkingDir ? undefined : config.WorkingDir,
    User: config.User === defaults.User ? undefined : config.User,
    Healthcheck: sameAs(config.Healthcheck, defaults.Healthcheck) ? undefined : config.Healthcheck,
    StopSignal: config.StopSignal === defaults.StopSignal ? undefined : config.StopSignal,
    ExposedPorts: config.ExposedPorts,
    Volumes: subtractKeys(config.Volumes, defaults.Volumes),
    Tty: config.Tty,
    OpenStdin: config.OpenStdin,
    StdinOnce: config.StdinOnce,
    // The default host name is the container's own short id, which must not carry over.
    Hostname: config.Hostname === current.Id.slice(0, 12) ? undefined : config.Hostname,
    Domainname: config.Domainname || undefined,
    HostConfig: hostConfig(current, primaryNetwork),
    NetworkingConfig: { EndpointsConfig: { [primaryNetwork]: endpoints.get(primaryNetwork)! } },
  };

  const extraNetworks = [...endpoints].filter(([network]) => network !== primaryNetwork);
  return { options, primaryNetwork, extraNetworks };
}

/**
 * Creates the container of `plan` and connects its other networks before it starts, because
 * engines before API 1.44 reject more than one network at create. Removes the container again
 * when a connect fails. Returns the new container's id.
 */
export async function createFromPlan(engine: DockerEngine, plan: RecreatePlan): Promise<string> {
  const id = await engine.createContainer(plan.options);
  try {
    for (const [network, endpoint] of plan.extraNetworks) {
      await engine.connectNetwork(network, id, endpoint);
    }
  } catch (error) {
    await engine.removeContainer(id).catch(() => undefined);
    throw error;
  }
  return id;
}

/**
 * Returns the user-defined networks of `current` with the endpoint settings a new container
 * should get: aliases without the old container's short id (the Engine adds the new one), and
 * none of the runtime fields (address, MAC, endpoint id).
 */
export function userNetworks(current: ContainerInspect): {
  primaryNetwork: string;
  endpoints: Map<string, EndpointConfig>;
} {
  const shortId = current.Id.slice(0, 12);
  const endpoints = new Map<string, EndpointConfig>();

  const networks = (current.NetworkSettings.Networks ?? {}) as Record<string, EndpointConfig>;
  for (const [network, settings] of Object.entries(networks)) {
    const endpoint: EndpointConfig = {
      Aliases: (settings.Aliases ?? []).filter((alias: string) => alias !== shortId),
    };
    if (settings.IPAMConfig && Object.keys(settings.IPAMConfig).length > 0) {
      endpoint.IPAMConfig = settings.IPAMConfig;
    }
    if (settings.Links && settings.Links.length > 0) endpoint.Links = settings.Links;
    if (settings.DriverOpts && Object.keys(settings.DriverOpts).length > 0) {
      endpoint.DriverOpts = settings.DriverOpts;
    }
    endpoints.set(network, endpoint);
  }

  const mode = current.HostConfig.NetworkMode ?? '';
  const primaryNetwork = endpoints.has(mode) ? mode : ([...endpoints.keys()][0] ?? mode);
  return { primaryNetwork, endpoints };
}

function hostConfig(
  current: ContainerInspect,
  primaryNetwork: string,
): CreateContainerOptions['HostConfig'] {
  const copy: Record<string, unknown> = { ...current.HostConfig, NetworkMode: primaryNetwork };
  delete copy.ContainerIDFile;

  // Anonymous volumes (an image VOLUME without a name) would come back empty in the new
  // container. Mounting the old ones by name keeps their data, as Compose does on recreate.
  const anonymous = (current.Mounts ?? []).filter(
    (mount) => mount.Type === 'volume' && /^[0-9a-f]{64}$/.test(mount.Name ?? ''),
  );
  if (anonymous.length > 0) {
    const mounts = [...((copy.Mounts as unknown[] | undefined) ?? [])];
    for (const mount of anonymous) {
      mounts.push({
        Type: 'volume',
        Source: mount.Name,
        Target: mount.Destination,
        ReadOnly: !mount.RW,
      });
    }
    copy.Mounts = mounts;
  }
  return copy as CreateContainerOptions['HostConfig'];
}

function subtractList(values: string[] | undefined, defaults: string[] | undefined): string[] {
  const inherited = new Set(defaults ?? []);
  return (values ?? []).filter((value) => !inherited.has(value));
}

function subtractLabels(
  labels: Record<string, string> | undefined,
  defaults: Record<string, string> | undefined,
): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const [key, value] of Object.entries(labels ?? {})) {
    if (defaults?.[key] !== value) kept[key] = value;
  }
  return kept;
}

function subtractKeys<T>(
  values: Record<string, T> | undefined,
  defaults: Record<string, T> | undefined,
): Record<string, T> | undefined {
  if (values === undefined || values === null) return undefined;
  const kept = Object.fromEntries(
    Object.entries(values).filter(([key]) => !(defaults && key in defaults)),
  );
  return Object.keys(kept).length > 0 ? kept : undefined;
}

function sameAs(a: unknown, b: unknown): boolean {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}
