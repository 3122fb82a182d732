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
   * Starts a deploy and returns its run, or the finished record for a repeated idempotency key.
   * Throws 409 while another deploy of the service runs and 503 when Docker is unreachable.
   */
  async start(request: DeployRequest): Promise<DeployRun | DeployEntry> {
    const earlier = this.findByKey(request);
    if (earlier !== undefined) return earlier;

    this.checkNotRunning(request.service);
    const engine = await this.reachableEngine();
    this.checkNotRunning(request.service);

    const run = new DeployRun(newEntry(request), (entry) => this.options.store.saveRecord(entry));
    this.running.set(request.service, run);
    if (request.idempotencyKey) this.byKey.set(keyOf(request.service, request.idempotencyKey), run);
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
    if (entry.idempotencyKey) this.byKey.delete(keyOf(entry.service, entry.idempotencyKey));
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

  private findByKey(request: DeployRequest): DeployRun | DeployEntry | undefined {
    if (!request.idempotencyKey) return undefined;
    return (
      this.byKey.get(keyOf(request.service, request.idempotencyKey)) ??
      this.options.store.findByIdempotencyKey(request.service, request.idempotencyKey)
    );
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

function keyOf(service: string, key: string): string {
  return `${service}\u0000${key}`;
}
