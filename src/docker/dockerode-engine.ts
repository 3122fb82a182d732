import Dockerode from 'dockerode';
import { errorMessage } from '../errors.ts';
import {
  dockerMessage,
  dockerStatus,
  type ContainerInspect,
  type ContainerSummary,
  type CreateContainerOptions,
  type DockerEngine,
  type DockerEvent,
  type EndpointConfig,
  type ImageInspect,
  type NetworkInspect,
  type PullProgress,
  type RegistryCredentials,
} from './engine.ts';
import { pullFailed, readPullStream } from './pull.ts';

const EVENT_TYPES = ['container', 'network'];
/** Maximum wait for the log of a stopped container to end. The lines read by then are used. */
const LOG_FOLLOW_TIMEOUT_MS = 2_000;

/** DockerEngine over the Engine API on a unix socket, through dockerode. */
export class DockerodeEngine implements DockerEngine {
  readonly endpoint: string;
  private readonly docker: Dockerode;

  constructor(socketPath: string) {
    this.endpoint = socketPath;
    this.docker = new Dockerode({ socketPath });
  }

  async ping(): Promise<void> {
    await this.docker.ping();
  }

  async pullImage(
    ref: string,
    credentials: RegistryCredentials | undefined,
    onProgress?: (event: PullProgress) => void,
  ): Promise<void> {
    let stream: NodeJS.ReadableStream;
    try {
      stream = await this.docker.pull(ref, credentials ? { authconfig: credentials } : {});
    } catch (error) {
      throw pullFailed(ref, dockerMessage(error), error);
    }
    await readPullStream(ref, stream, onProgress);
  }

  inspectImage(ref: string): Promise<ImageInspect | undefined> {
    return orUndefined(this.docker.getImage(ref).inspect());
  }

  listContainers(): Promise<ContainerSummary[]> {
    return this.docker.listContainers({ all: true });
  }

  inspectContainer(idOrName: string): Promise<ContainerInspect | undefined> {
    return orUndefined(this.docker.getContainer(idOrName).inspect());
  }

  inspectNetwork(idOrName: string): Promise<NetworkInspect | undefined> {
    return orUndefined(this.docker.getNetwork(idOrName).inspect());
  }

  async createContainer(options: CreateContainerOptions): Promise<string> {
    const container = await this.docker.createContainer(options);
    return container.id;
  }

  async connectNetwork(
    network: string,
    containerId: string,
    endpoint: EndpointConfig,
  ): Promise<void> {
    await this.docker
      .getNetwork(network)
      .connect({ Container: containerId, EndpointConfig: endpoint });
  }

  async startContainer(id: string): Promise<void> {
    await this.docker.getContainer(id).start();
  }

  async stopContainer(id: string, timeoutSeconds?: number): Promise<void> {
    try {
      await this.docker
        .getContainer(id)
        .stop(timeoutSeconds === undefined ? {} : { t: timeoutSeconds });
    } catch (error) {
      // 304: already stopped.
      if (dockerStatus(error) !== 304) throw error;
    }
  }

  async removeContainer(id: string): Promise<void> {
    try {
      await this.docker.getContainer(id).remove({ force: true, v: false });
    } catch (error) {
      if (dockerStatus(error) !== 404) throw error;
    }
  }

  async renameContainer(id: string, name: string): Promise<void> {
    await this.docker.getContainer(id).rename({ name });
  }

  async waitContainer(id: string): Promise<number> {
    const result = (await this.docker.getContainer(id).wait()) as { StatusCode: number };
    return result.StatusCode;
  }

  async containerLogs(id: string, lines: number): Promise<string> {
    const container = this.docker.getContainer(id);
    const info = await container.inspect();
    const options = { stdout: true, stderr: true, tail: lines } as const;
    // Docker copies a container's output to its log asynchronously, so right after the container
    // exits a plain read can miss the last lines. Following the log of a stopped container ends
    // once everything is written.
    const raw = info.State.Running
      ? ((await container.logs({ ...options, follow: false })) as Buffer)
      : await readAll(
          (await container.logs({ ...options, follow: true })) as NodeJS.ReadableStream,
          LOG_FOLLOW_TIMEOUT_MS,
        );
    return info.Config.Tty ? raw.toString('utf8') : demultiplex(raw);
  }

  followEvents(onEvent: (event: DockerEvent) => void, onEnd: (error?: Error) => void): () => void {
    let stream: NodeJS.ReadableStream | undefined;
    let stopped = false;
    const filters = JSON.stringify({ type: EVENT_TYPES });

    this.docker
      .getEvents({ filters } as unknown as Dockerode.GetEventsOptions)
      .then((events) => {
        stream = events;
        if (stopped) return destroy(events);
        readEvents(events, onEvent, (error) => {
          if (!stopped) onEnd(error);
        });
      })
      .catch((error: unknown) => {
        if (!stopped) onEnd(new Error(errorMessage(error)));
      });

    return () => {
      stopped = true;
      if (stream) destroy(stream);
    };
  }
}

function readEvents(
  stream: NodeJS.ReadableStream,
  onEvent: (event: DockerEvent) => void,
  onEnd: (error?: Error) => void,
): void {
  let buffered = '';
  stream.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    let newline: number;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, newline).trim();
      buffered = buffered.slice(newline + 1);
      if (line !== '') onEvent(JSON.parse(line) as DockerEvent);
    }
  });
  stream.on('error', (error: Error) => onEnd(error));
  stream.on('end', () => onEnd());
}

function destroy(stream: NodeJS.ReadableStream): void {
  (stream as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
}

async function orUndefined<T>(request: Promise<T>): Promise<T | undefined> {
  try {
    return await request;
  } catch (error) {
    if (dockerStatus(error) === 404) return undefined;
    throw error;
  }
}

/**
 * Splits the Engine's multiplexed log stream (used when the container has no TTY): each frame
 * is an 8-byte header holding the stream type and the payload length, then the payload.
 */
/** Reads a stream to its end, or for at most `timeoutMs`. */
function readAll(stream: NodeJS.ReadableStream, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const done = () => {
      clearTimeout(timer);
      (stream as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
      resolve(Buffer.concat(chunks));
    };
    const timer = setTimeout(done, timeoutMs);
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', done);
    stream.on('error', done);
  });
}

export function demultiplex(raw: Buffer): string {
  const parts: Buffer[] = [];
  let offset = 0;
  while (offset + 8 <= raw.length) {
    const length = raw.readUInt32BE(offset + 4);
    parts.push(raw.subarray(offset + 8, offset + 8 + length));
    offset += 8 + length;
  }
  return Buffer.concat(parts).toString('utf8');
}
