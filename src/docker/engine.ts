import type Dockerode from 'dockerode';

export type ContainerInspect = Dockerode.ContainerInspectInfo;
export type ImageInspect = Dockerode.ImageInspectInfo;
export type NetworkInspect = Dockerode.NetworkInspectInfo;
export type ContainerSummary = Dockerode.ContainerInfo;
export type CreateContainerOptions = Dockerode.ContainerCreateOptions;
export type EndpointConfig = Dockerode.EndpointSettings;

/** Credentials sent with a pull, taken from the configuration. */
export interface RegistryCredentials {
  username: string;
  password: string;
  serveraddress: string;
}

/** One line of the Engine's pull progress stream. */
export interface PullProgress {
  status?: string;
  id?: string;
  progress?: string;
  error?: string;
  errorDetail?: { message?: string };
}

/** One Docker event, as the Engine reports it on `GET /events`. */
export interface DockerEvent {
  Type: string;
  Action: string;
  Actor: { ID: string; Attributes?: Record<string, string> };
}

/**
 * The Docker Engine operations the edge uses. Deploys and discovery depend on this interface
 * only, so unit tests can count and fake every call.
 */
export interface DockerEngine {
  /** Where the Engine is reached, for messages. */
  readonly endpoint: string;
  ping(): Promise<void>;
  /** Pulls `ref` and resolves after the progress stream ended without an error line. */
  pullImage(
    ref: string,
    credentials: RegistryCredentials | undefined,
    onProgress?: (event: PullProgress) => void,
  ): Promise<void>;
  /** Returns undefined when the image does not exist. */
  inspectImage(ref: string): Promise<ImageInspect | undefined>;
  /** Every container, running or not. */
  listContainers(): Promise<ContainerSummary[]>;
  /** Returns undefined when the container does not exist. */
  inspectContainer(idOrName: string): Promise<ContainerInspect | undefined>;
  /** Returns undefined when the network does not exist. */
  inspectNetwork(idOrName: string): Promise<NetworkInspect | undefined>;
  /** Creates a container and returns its id. */
  createContainer(options: CreateContainerOptions): Promise<string>;
  connectNetwork(network: string, containerId: string, endpoint: EndpointConfig): Promise<void>;
  startContainer(id: string): Promise<void>;
  /**
   * Stops a container; a container that is already stopped is not an error. Without
   * `timeoutSeconds` the container's own stop timeout applies (Compose's stop_grace_period).
   */
  stopContainer(id: string, timeoutSeconds?: number): Promise<void>;
  /** Removes a container by force; a container that is already gone is not an error. */
  removeContainer(id: string): Promise<void>;
  renameContainer(id: string, name: string): Promise<void>;
  /** Waits until the container exits and returns its exit code. */
  waitContainer(id: string): Promise<number>;
  /** Returns the last `lines` lines of stdout and stderr. */
  containerLogs(id: string, lines: number): Promise<string>;
  /**
   * Follows container and network events until the returned function is called. `onEnd` runs
   * when the stream breaks (Engine restart, socket error) so the caller can reconnect.
   */
  followEvents(onEvent: (event: DockerEvent) => void, onEnd: (error?: Error) => void): () => void;
}

/** Status code of a Docker Engine API error, when there is one. */
export function dockerStatus(error: unknown): number | undefined {
  const status = (error as { statusCode?: unknown } | null)?.statusCode;
  return typeof status === 'number' ? status : undefined;
}

/**
 * Message of a Docker Engine API error: the Engine's own `message`. docker-modem wraps it as
 * "(HTTP code 404) no such container - <message> " and keeps the JSON only for non-stream calls.
 */
export function dockerMessage(error: unknown): string {
  const json = (error as { json?: { message?: unknown } } | null)?.json;
  if (json !== null && typeof json === 'object' && typeof json.message === 'string') {
    return json.message;
  }
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/^\(HTTP code \d+\) [^-]*- /, '').trim();
}
