import type { DeployService, EdgeContext } from '../context.ts';

/** Registers the deploy endpoints on the edge API. */
export async function createDeployService(_context: EdgeContext): Promise<DeployService | undefined> {
  return undefined;
}
