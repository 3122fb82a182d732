import { randomBytes } from 'node:crypto';
import type { EdgeConfig } from '../config/schema.ts';
import type { DeployService } from '../context.ts';
import type { DockerEngine } from '../docker/engine.ts';
import { EdgeError, errorMessage } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { TargetRegistry } from '../targets/registry.ts';
import { recoverJournal } from './recovery.ts';
import { DeployRun, StepError } from './run.ts';
import type { DeployEntry, DeployStore } from './store.ts';
import { runSwap } from './swap.ts';

/** The validated content of a deploy request. */
export interface DeployRequest {
  service: string;
  image: string;
  idempotencyKey?: string;
  commit?: string;
  ref?: string;
  rollback?: boolean;
}

/** Pauses discovery of a service while a deploy owns its target slot. */
export interface DiscoveryControl {
  pause(service: string): void;
  resume(service: string): Promise<void>;
}

export interface EdgeDeployServiceOptions {
  config: EdgeConfig;
  /** Undefined when Docker is not configured: every deploy is then rejected with 503. */
  engine: DockerEngine | undefined;
  targets: TargetRegistry;
  store: DeployStore;
  logger: Logger;
  discovery?: DiscoveryControl;
}

/**
 * Runs deploys, one per service at a time, and keeps their history. A request repeating an
 * idempotency key gets the earlier deploy (still running or finished) instead of a new one.
 * Keys are shared by the services of one deploy environment, and a key reused for another
 * service or image is rejected.
 */
export class EdgeDeployService implements DeployService {
  private readonly options: EdgeDeployServiceOptions;
  private readonly running = new Map<string, DeployRun>();
  private readonly byKey = new Map<string, DeployRun>();

  constructor(options: EdgeDeployServiceOptions) {
    this.options = options;
  }

  history(service?: string): DeployEntry[] {
    return this.options.store.history(service);
  }

  find(id: string): DeployEntry | undefined {
    return this.running.get(this.serviceOfRun(id) ?? '')?.entry ?? this.options.store.find(id);
  }

  previousDigest(service: string): string | undefined {
    const last = this.history(service).find((entry) => entry.state === 'succeeded');
    return last?.previousDigest;
  }

  /** Deploys the image digest that the last successful deploy of `service` replaced. */
  async rollback(service: string): Promise<DeployEntry> {
    const started = await this.startRollback(service);
    if (!(started instanceof DeployRun)) return started;
    await started.whenFinished();
    return started.entry;
  }

  async startRollback(service: string): Promise<DeployRun | DeployEntry> {
    const digest = this.previousDigest(service);
    const repository = this.options.config.services[service]?.image;
    if (digest === undefined || repository === undefined) {
      throw new EdgeError(
        'EDGE_ROLLBACK_UNAVAILABLE',
        `no earlier image digest recorded for service ${service}`,
        {
          status: 409,
          context: { service },
        },
      );
    }
    return this.start({ service, image: `${repository}@${digest}`, rollback: true });
  }

  /**
   * Starts a deploy and returns its run, or the earlier run or record for a repeated idempotency
   * key. Throws 422 for a key used before with another service or image, 409 while another
   * deploy of the service runs and 503 when Docker is unreachable.
   */
  async start(request: DeployRequest): Promise<DeployRun | DeployEntry> {
    const earlier = this.findByKey(request);
    if (earlier !== undefined) {
      checkSameDeploy(request, earlier instanceof DeployRun ? earlier.entry : earlier);
      return earlier;
    }

    this.checkNotRunning(request.service);
    const engine = await this.reachableEngine();
    this.checkNotRunning(request.service);

    const run = new DeployRun(newEntry(request), (entry) => this.options.store.saveRecord(entry));
    this.running.set(request.service, run);
    if (request.idempotencyKey) this.byKey.set(this.keyOf(request), run);
    this.options.store.saveRecord(run.entry);
    void this.execute(engine, run);
    return run;
  }

  async stop(): Promise<void> {
    // A deploy cut short here is finished or undone by recovery at the next start.
  }

  private async execute(engine: DockerEngine, run: DeployRun): Promise<void> {
    const { entry } = run;
    const logger = this.options.logger.child({ service: entry.service, deployId: entry.id });
    logger.info(
      { image: entry.image, commit: entry.commit, rollback: entry.rollback },
      'deploying',
    );
    this.options.discovery?.pause(entry.service);

    let failure: unknown;
    try {
      await this.recoverLeftovers(engine, entry.service, logger);
      await runSwap({ ...this.options, engine, logger }, run);
    } catch (error) {
      failure = error instanceof StepError ? error : new StepError('recover', error);
    }

    run.finish(failure);
    this.running.delete(entry.service);
    if (entry.idempotencyKey) this.byKey.delete(this.keyOf(entry));
    if (failure === undefined) {
      logger.info(
        { image: entry.image, digest: entry.digest, durationMs: entry.durationMs },
        'deployed',
      );
    } else {
      logger.error(
        { image: entry.image, failedStep: entry.failedStep, err: entry.error },
        'deploy failed',
      );
    }
    await this.options.discovery?.resume(entry.service).catch((error: unknown) => {
      logger.warn({ err: errorMessage(error) }, 'service lookup after deploy failed');
    });
  }

  /** Finishes or undoes an earlier deploy of the service that the edge did not see to the end. */
  private async recoverLeftovers(
    engine: DockerEngine,
    service: string,
    logger: Logger,
  ): Promise<void> {
    const journal = this.options.store
      .journals()
      .find((candidate) => candidate.service === service);
    if (journal === undefined) return;
    const name = this.options.config.services[service]!.container;
    await recoverJournal(engine, this.options.store, journal, name, logger);
  }

  /** Finds the deploy that used the request's idempotency key in the service's environment. */
  private findByKey(request: DeployRequest): DeployRun | DeployEntry | undefined {
    const key = request.idempotencyKey;
    if (!key) return undefined;

    const running = this.byKey.get(this.keyOf(request));
    if (running !== undefined) return running;

    const environment = this.environmentOf(request.service);
    return this.options.store.findByIdempotencyKey(
      key,
      (service) => this.environmentOf(service) === environment,
    );
  }

  /** Returns the map key of a keyed deploy: its environment and idempotency key. */
  private keyOf(deploy: { service: string; idempotencyKey?: string }): string {
    return `${this.environmentOf(deploy.service)}\u0000${deploy.idempotencyKey ?? ''}`;
  }

  private environmentOf(service: string): string | undefined {
    return this.options.config.services[service]?.environment;
  }

  private checkNotRunning(service: string): void {
    const active = this.running.get(service);
    if (active === undefined) return;
    throw new EdgeError(
      'EDGE_DEPLOY_IN_PROGRESS',
      `a deploy of service ${service} is already running: ${active.entry.id}`,
      {
        status: 409,
        context: { service, deployId: active.entry.id },
      },
    );
  }

  private async reachableEngine(): Promise<DockerEngine> {
    const engine = this.options.engine;
    if (engine === undefined) {
      throw new EdgeError('EDGE_DOCKER_UNAVAILABLE', 'docker is not configured on this edge', {
        status: 503,
      });
    }
    try {
      await engine.ping();
      return engine;
    } catch (error) {
      throw new EdgeError(
        'EDGE_DOCKER_UNAVAILABLE',
        `docker engine unreachable at ${engine.endpoint}: ${errorMessage(error)}; the edge keeps proxying, retry the deploy when Docker is back`,
        { status: 503, cause: error },
      );
    }
  }

  private serviceOfRun(id: string): string | undefined {
    for (const [service, run] of this.running) if (run.entry.id === id) return service;
    return undefined;
  }
}

function newEntry(request: DeployRequest): DeployEntry {
  const now = new Date();
  const id = `${now.toISOString().replace(/[-:]/g, '').slice(0, 15)}-${randomBytes(4).toString('hex')}`;
  return {
    id,
    service: request.service,
    image: request.image,
    ...(request.commit ? { commit: request.commit } : {}),
    ...(request.ref ? { ref: request.ref } : {}),
    ...(request.idempotencyKey ? { idempotencyKey: request.idempotencyKey } : {}),
    ...(request.rollback ? { rollback: true } : {}),
    state: 'running',
    startedAt: now.toISOString(),
    steps: [],
  };
}

/**
 * Rejects a repeated idempotency key whose request differs from the deploy that first used it.
 * 422 is the status the IETF Idempotency-Key draft (draft-ietf-httpapi-idempotency-key-header)
 * gives a key reused with a different payload.
 */
function checkSameDeploy(request: DeployRequest, earlier: DeployEntry): void {
  if (request.service === earlier.service && request.image === earlier.image) return;

  throw new EdgeError(
    'EDGE_DEPLOY_KEY_REUSED',
    `idempotencyKey ${request.idempotencyKey} was already used by deploy ${earlier.id} of ` +
      `service ${earlier.service} with image ${earlier.image}; use a new key for a different deploy`,
    {
      status: 422,
      context: { service: request.service, image: request.image, deployId: earlier.id },
    },
  );
}
