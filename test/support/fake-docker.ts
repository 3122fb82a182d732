/**
 * An in-memory DockerEngine for unit tests: containers, networks and images as plain objects,
 * every call recorded in `calls`. Containers get the address 127.0.0.1, so a health probe
 * reaches a real HTTP server the test starts on the service's port.
 */
import { randomBytes } from 'node:crypto';
import type {
  ContainerInspect,
  ContainerSummary,
  CreateContainerOptions,
  DockerEngine,
  DockerEvent,
  EndpointConfig,
  ImageInspect,
  NetworkInspect,
  PullProgress,
  RegistryCredentials,
} from '../../src/docker/engine.ts';

/** How a container of an image behaves once started. */
export interface ImageBehaviour {
  /** Exit right after start with this code (a crash loop when the restart policy restarts it). */
  exitCode?: number;
  logs?: string;
}

export class FakeEngine implements DockerEngine {
  readonly endpoint = '/fake/docker.sock';
  readonly calls: string[] = [];
  readonly containers = new Map<string, ContainerInspect>();
  readonly networks = new Set<string>(['front']);
  readonly images = new Map<string, ImageInspect>();
  readonly behaviours = new Map<string, ImageBehaviour>();
  pullError: Error | undefined;
  pullDelayMs = 0;
  createError: Error | undefined;
  reachable = true;

  ping(): Promise<void> {
    this.calls.push('ping');
    return this.reachable
      ? Promise.resolve()
      : Promise.reject(new Error('connect ENOENT /fake/docker.sock'));
  }

  async pullImage(
    ref: string,
    _credentials: RegistryCredentials | undefined,
    onProgress?: (event: PullProgress) => void,
  ): Promise<void> {
    this.calls.push(`pull ${ref}`);
    await new Promise((resolve) => setTimeout(resolve, this.pullDelayMs));
    if (this.pullError) throw this.pullError;
    onProgress?.({ status: 'Pull complete', id: 'layer' });
    this.addImage(ref);
    this.calls.push(`pulled ${ref}`);
  }

  async inspectImage(ref: string): Promise<ImageInspect | undefined> {
    this.calls.push(`inspectImage ${ref}`);
    return this.images.get(ref);
  }

  async listContainers(): Promise<ContainerSummary[]> {
    this.calls.push('listContainers');
    return [...this.containers.values()].map((info) => ({
      Id: info.Id,
      Names: [info.Name],
      Labels: info.Config.Labels ?? {},
      State: info.State.Status,
      Created: Date.parse(info.Created) / 1000,
    })) as unknown as ContainerSummary[];
  }

  async inspectContainer(idOrName: string): Promise<ContainerInspect | undefined> {
    this.calls.push(`inspectContainer ${idOrName}`);
    return this.find(idOrName);
  }

  async inspectNetwork(idOrName: string): Promise<NetworkInspect | undefined> {
    this.calls.push(`inspectNetwork ${idOrName}`);
    return this.networks.has(idOrName)
      ? ({ Name: idOrName, Id: idOrName } as NetworkInspect)
      : undefined;
  }

  async createContainer(options: CreateContainerOptions): Promise<string> {
    this.calls.push(`create ${options.name}`);
    if (this.createError) throw this.createError;
    const network = options.HostConfig?.NetworkMode ?? 'front';
    return this.addContainer({
      name: options.name!,
      image: options.Image!,
      labels: options.Labels ?? {},
      env: options.Env ?? [],
      networks: { [network]: options.NetworkingConfig?.EndpointsConfig?.[network] ?? {} },
      running: false,
      cmd: options.Cmd,
    });
  }

  async connectNetwork(
    network: string,
    containerId: string,
    endpoint: EndpointConfig,
  ): Promise<void> {
    this.calls.push(`connect ${network} ${containerId}`);
    this.get(containerId).NetworkSettings.Networks[network] = {
      ...endpoint,
      IPAddress: '127.0.0.1',
    } as never;
  }

  async startContainer(id: string): Promise<void> {
    this.calls.push(`start ${id}`);
    const info = this.get(id);
    const behaviour = this.behaviours.get(info.Config.Image) ?? {};
    const exitCode =
      info.Config.Cmd?.[0] === 'migrate' ? Number(info.Config.Cmd[1] ?? 0) : behaviour.exitCode;
    if (exitCode === undefined) {
      info.State = { ...info.State, Running: true, Status: 'running', ExitCode: 0 };
      return;
    }
    info.State = { ...info.State, Running: false, Status: 'exited', ExitCode: exitCode };
  }

  async stopContainer(id: string): Promise<void> {
    this.calls.push(`stop ${id}`);
    const info = this.find(id);
    if (info) info.State = { ...info.State, Running: false, Status: 'exited' };
  }

  async removeContainer(id: string): Promise<void> {
    this.calls.push(`remove ${id}`);
    const info = this.find(id);
    if (info) this.containers.delete(info.Id);
  }

  async renameContainer(id: string, name: string): Promise<void> {
    this.calls.push(`rename ${id} ${name}`);
    this.get(id).Name = `/${name}`;
  }

  async waitContainer(id: string): Promise<number> {
    this.calls.push(`wait ${id}`);
    return this.get(id).State.ExitCode;
  }

  async containerLogs(id: string): Promise<string> {
    this.calls.push(`logs ${id}`);
    const info = this.get(id);
    if (info.Config.Cmd?.[0] === 'migrate')
      return 'migrating\nmigration failed: relation missing\n';
    return this.behaviours.get(info.Config.Image)?.logs ?? '';
  }

  followEvents(
    _onEvent: (event: DockerEvent) => void,
    _onEnd: (error?: Error) => void,
  ): () => void {
    this.calls.push('followEvents');
    return () => undefined;
  }

  /** Calls that change containers: create, connect, start, stop, remove, rename. */
  mutations(): string[] {
    return this.calls.filter((call) => /^(create|connect|start|stop|remove|rename) /.test(call));
  }

  addImage(ref: string, env: string[] = ['PATH=/bin']): ImageInspect {
    const repository = ref.split(/[:@](?=[^/]*$)/)[0]!;
    const digest = `sha256:${randomBytes(32).toString('hex')}`;
    const image = {
      Id: `sha256:${randomBytes(32).toString('hex')}`,
      RepoDigests: [`${repository}@${digest}`],
      Config: { Env: env, Labels: {}, Cmd: ['node', 'server.js'] },
    } as unknown as ImageInspect;
    this.images.set(ref, image);
    this.images.set(image.Id, image);
    this.images.set(`${repository}@${digest}`, image);
    return image;
  }

  addContainer(options: {
    name: string;
    image: string;
    labels?: Record<string, string>;
    env?: string[];
    networks?: Record<string, EndpointConfig>;
    running?: boolean;
    cmd?: string[];
  }): string {
    const id = randomBytes(32).toString('hex');
    const networks = Object.fromEntries(
      Object.entries(options.networks ?? { front: {} }).map(([name, endpoint]) => [
        name,
        { ...endpoint, IPAddress: '127.0.0.1' },
      ]),
    );
    const image = this.images.get(options.image) ?? this.addImage(options.image);
    this.containers.set(id, {
      Id: id,
      Name: `/${options.name}`,
      Image: image.Id,
      Created: new Date().toISOString(),
      RestartCount: 0,
      Config: {
        Image: options.image,
        Env: options.env ?? [],
        Labels: options.labels ?? {},
        Cmd: options.cmd,
      },
      HostConfig: {
        NetworkMode: Object.keys(networks)[0],
        RestartPolicy: { Name: 'unless-stopped' },
      },
      Mounts: [],
      NetworkSettings: { Networks: networks },
      State: {
        Running: options.running ?? true,
        Status: options.running === false ? 'created' : 'running',
        ExitCode: 0,
      },
    } as unknown as ContainerInspect);
    return id;
  }

  /** Container by id or name, as the Engine resolves it. */
  find(idOrName: string): ContainerInspect | undefined {
    return (
      this.containers.get(idOrName) ??
      [...this.containers.values()].find(
        (info) => info.Name === `/${idOrName}` || info.Id.startsWith(idOrName),
      )
    );
  }

  private get(id: string): ContainerInspect {
    const info = this.find(id);
    if (!info) throw Object.assign(new Error(`no such container: ${id}`), { statusCode: 404 });
    return info;
  }
}

/**
 * Wraps an engine so that every method call, whatever it is, is counted: the proof that a
 * rejected request never reached Docker.
 */
export function countingEngine(engine: DockerEngine): { engine: DockerEngine; count(): number } {
  let count = 0;
  const proxy = new Proxy(engine, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        count++;
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { engine: proxy, count: () => count };
}
