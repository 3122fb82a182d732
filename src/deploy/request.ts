import { z } from 'zod';
import type { EdgeConfig, ServiceConfig } from '../config/schema.ts';
import { formatPath, plainErrorMap } from '../config/issues.ts';
import { EdgeError } from '../errors.ts';

/** A Docker tag: at most 128 characters, not starting with `.` or `-`. */
const TAG = '[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}';
const DIGEST = 'sha256:[0-9a-f]{64}';
const PRINTABLE = /^[\x21-\x7e]+$/;

const textField = (max: number) =>
  z.string().min(1).max(max).regex(PRINTABLE, 'must be printable ASCII without spaces');

/** The body of `POST /_edge/deploy`. Unknown fields are rejected, so nothing else can be chosen. */
const deployBodySchema = z
  .object({
    service: z.string().min(1).max(128),
    image: z.string().min(1).max(512),
    idempotencyKey: textField(128).optional(),
    commit: textField(64).optional(),
    ref: textField(256).optional(),
  })
  .strict();

const rollbackBodySchema = z.object({ service: z.string().min(1).max(128) }).strict();

export type DeployBody = z.infer<typeof deployBodySchema>;

/** Parses and validates a deploy request body against the configured services. */
export function parseDeployBody(raw: string, config: EdgeConfig): DeployBody {
  const body = parseStrict(raw, deployBodySchema);
  const service = configuredService(config, body.service);
  checkImage(body.image, service, body.service);
  return body;
}

/** Parses a rollback request body. */
export function parseRollbackBody(raw: string, config: EdgeConfig): { service: string } {
  const body = parseStrict(raw, rollbackBodySchema);
  configuredService(config, body.service);
  return body;
}

/** Returns the configuration of a deployable service; 404 for any other name. */
export function configuredService(config: EdgeConfig, name: string): ServiceConfig {
  const service = Object.hasOwn(config.services, name) ? config.services[name] : undefined;
  if (service === undefined) {
    throw new EdgeError(
      'EDGE_DEPLOY_UNKNOWN_SERVICE',
      `unknown service ${name}: it is not under services in the config`,
      {
        status: 404,
        context: { service: name },
      },
    );
  }
  return service;
}

/**
 * Accepts only `<repository>:<tag>`, `<repository>@sha256:<hex>` or both, where the repository
 * is exactly the one configured for the service. The whole reference must match, so nothing can
 * follow the digest.
 */
export function checkImage(image: string, service: ServiceConfig, name: string): void {
  const repository = service.image;
  const pattern = new RegExp(`^${escapeRegExp(repository)}(?::(${TAG}))?(?:@(${DIGEST}))?$`);
  const match = pattern.exec(image);
  const hasTagOrDigest = match !== null && (match[1] !== undefined || match[2] !== undefined);

  if (!hasTagOrDigest) {
    throw new EdgeError(
      'EDGE_DEPLOY_IMAGE_REJECTED',
      `image ${JSON.stringify(image)} is not allowed for service ${name}: use ${repository}:<tag> or ${repository}@sha256:<digest>`,
      { status: 400, context: { service: name, image, repository } },
    );
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function parseStrict<T>(raw: string, schema: z.ZodType<T>): T {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw badRequest('request body is not valid JSON');
  }

  const result = schema.safeParse(value, { errorMap: plainErrorMap });
  if (!result.success) {
    const problems = result.error.issues.map(
      (issue) => `${issue.path.length > 0 ? formatPath(issue.path) : 'body'}: ${issue.message}`,
    );
    throw badRequest(`invalid request body: ${problems.join('; ')}`);
  }
  return result.data;
}

function badRequest(message: string): EdgeError {
  return new EdgeError('EDGE_DEPLOY_BAD_REQUEST', message, { status: 400 });
}
