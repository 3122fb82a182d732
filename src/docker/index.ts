import type { DockerRuntime, EdgeContext } from '../context.ts';

/** Connects to Docker when services are configured; returns undefined when there are none. */
export async function createDockerRuntime(_context: EdgeContext): Promise<DockerRuntime | undefined> {
  return undefined;
}
