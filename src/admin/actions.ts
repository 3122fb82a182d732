import type { EdgeContext } from '../context.ts';
import { EdgeError, errorMessage } from '../errors.ts';
import type { DeployRecord } from '../status.ts';

/** Time an action request waits for the outcome before it reports "started". */
export const ACTION_WAIT_MS = 1_500;

export interface ActionOutcome {
  kind: 'info' | 'error';
  text: string;
}

/** An admin action: its form fields are checked first, then `run` starts it. */
export interface AdminAction {
  /** Form action URL. */
  path: string;
  /** Question asked before the action runs. */
  question(fields: URLSearchParams): string;
  /** Raises EdgeError (status 400, 404 or 409) when the action cannot run with these fields. */
  validate(fields: URLSearchParams): Record<string, string>;
  run(fields: Record<string, string>): Promise<string>;
  /** Message while the action is still running after ACTION_WAIT_MS. */
  started(fields: Record<string, string>): string;
}

/** Rolls a deployable service back to the digest it ran before its last deploy. */
export function rollbackAction(context: EdgeContext): AdminAction {
  return {
    path: '/_edge/actions/rollback',
    question: (fields) => `Roll back ${fields.get('service') ?? ''} to the previous image?`,
    validate(fields) {
      const service = fields.get('service') ?? '';
      if (!Object.hasOwn(context.config.services, service)) {
        throw new EdgeError(
          'EDGE_ADMIN_UNKNOWN_SERVICE',
          `unknown service ${JSON.stringify(service)}`,
          {
            status: 404,
            context: { service },
          },
        );
      }
      if (context.deploys === undefined) {
        throw new EdgeError('EDGE_ADMIN_DEPLOYS_DISABLED', 'deploys are not configured', {
          status: 409,
        });
      }
      if (context.deploys.previousDigest(service) === undefined) {
        throw new EdgeError(
          'EDGE_ADMIN_NO_ROLLBACK',
          `service ${service} has no previous image to roll back to`,
          {
            status: 409,
            context: { service },
          },
        );
      }
      return { service };
    },
    async run({ service }) {
      const record: DeployRecord = await context.deploys!.rollback(service!);
      if (record.state === 'failed') {
        throw new Error(
          `rollback of ${service} failed at ${record.failedStep ?? 'an unknown step'}: ${record.error ?? ''}`,
        );
      }
      return `Rollback of ${service} ${record.state === 'running' ? 'started' : 'succeeded'}.`;
    },
    started: ({ service }) => `Rollback of ${service} started; the deploy list shows its progress.`,
  };
}

/** Starts a renewal of one certificate now, outside the renewal schedule. */
export function renewAction(context: EdgeContext): AdminAction {
  return {
    path: '/_edge/actions/renew',
    question: (fields) => `Renew the certificate for ${fields.get('name') ?? ''} now?`,
    validate(fields) {
      const name = (fields.get('name') ?? '').toLowerCase();
      const status = context.certificates.status().find((entry) => entry.names.includes(name));
      if (status === undefined) {
        throw new EdgeError(
          'EDGE_ADMIN_UNKNOWN_CERTIFICATE',
          `no certificate for ${JSON.stringify(name)}`,
          {
            status: 404,
            context: { name },
          },
        );
      }
      if (!isAcmeDirectory(status.directory)) {
        throw new EdgeError(
          'EDGE_ADMIN_NOT_ACME',
          `the certificate for ${name} is not issued by ACME`,
          {
            status: 409,
            context: { name, directory: status.directory },
          },
        );
      }
      return { name };
    },
    async run({ name }) {
      await context.certificates.renewNow(name!);
      return `Renewal of the certificate for ${name} finished.`;
    },
    started: ({ name }) => `Renewal of the certificate for ${name} started.`,
  };
}

/** True for an ACME directory URL; files and self-signed certificates cannot be renewed. */
export function isAcmeDirectory(directory: string): boolean {
  return /^https?:\/\//.test(directory);
}

/**
 * Runs an action and waits up to ACTION_WAIT_MS for its outcome. A slower action keeps running
 * and its failure is logged when it ends.
 */
export async function runAction(
  context: EdgeContext,
  action: AdminAction,
  fields: Record<string, string>,
): Promise<ActionOutcome> {
  const running = action.run(fields).then(
    (text): ActionOutcome => ({ kind: 'info', text }),
    (error: unknown): ActionOutcome => {
      context.logger.error({ err: error, ...fields }, 'admin action failed');
      return { kind: 'error', text: errorMessage(error) };
    },
  );

  let timer: NodeJS.Timeout | undefined;
  const waited = new Promise<ActionOutcome>((resolve) => {
    timer = setTimeout(
      () => resolve({ kind: 'info', text: action.started(fields) }),
      ACTION_WAIT_MS,
    );
  });
  const outcome = await Promise.race([running, waited]);
  clearTimeout(timer);
  return outcome;
}
