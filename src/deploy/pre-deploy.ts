import type { DockerEngine } from '../docker/engine.ts';
import {
  createFromPlan,
  DEPLOY_LABEL,
  planRecreate,
  ROLE_LABEL,
  SERVICE_LABEL,
} from '../docker/recreate.ts';
import { EdgeError } from '../errors.ts';
import { lastLine } from './health-wait.ts';
import type { CurrentContainer } from './preflight.ts';

const LOG_TAIL_LINES = 20;

export interface PreDeployOptions {
  engine: DockerEngine;
  current: CurrentContainer;
  image: string;
  command: string[];
  service: string;
  deployId: string;
  name: string;
  timeoutMs: number;
}

/**
 * Runs the service's pre-deploy command (a migration) in a one-off container of the new image
 * with the service's env, mounts and networks, and removes it afterwards. A non-zero exit or a
 * timeout fails the deploy with the last log line. Returns the last log line on success.
 */
export async function runPreDeploy(options: PreDeployOptions): Promise<string> {
  const { engine } = options;
  const plan = planRecreate(
    options.current.info,
    options.current.image,
    options.image,
    options.name,
    {
      [SERVICE_LABEL]: options.service,
      [DEPLOY_LABEL]: options.deployId,
      [ROLE_LABEL]: 'pre-deploy',
    },
  );
  plan.options.Cmd = options.command;
  plan.options.Healthcheck = { Test: ['NONE'] };
  plan.options.HostConfig = {
    ...plan.options.HostConfig,
    RestartPolicy: { Name: 'no' },
    PortBindings: {},
  };

  const id = await createFromPlan(engine, plan);
  try {
    await engine.startContainer(id);
    const exitCode = await waitWithTimeout(engine, id, options.timeoutMs);
    const line = lastLine(await engine.containerLogs(id, LOG_TAIL_LINES));
    if (exitCode !== 0) {
      throw new EdgeError(
        'EDGE_PRE_DEPLOY_FAILED',
        `pre-deploy command ${options.command.join(' ')} exited with code ${exitCode}${line ? `: ${line}` : ''}`,
        { status: 502, context: { exitCode } },
      );
    }
    return line ? `exit code 0: ${line}` : 'exit code 0';
  } finally {
    await engine.removeContainer(id);
  }
}

async function waitWithTimeout(
  engine: DockerEngine,
  id: string,
  timeoutMs: number,
): Promise<number> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      reject(
        new EdgeError(
          'EDGE_PRE_DEPLOY_TIMEOUT',
          `pre-deploy command still running after ${timeoutMs} ms`,
          {
            status: 504,
          },
        ),
      );
    }, timeoutMs);
  });
  try {
    return await Promise.race([engine.waitContainer(id), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
