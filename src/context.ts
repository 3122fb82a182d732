import type { EdgeConfig, SiteConfig } from './config/schema.ts';
import type { EdgeApi } from './edge-api.ts';
import type { IdleCollector } from './idle-collector.ts';
import type { Logger } from './log.ts';
import type { RouteStats } from './stats.ts';
import type { ContainerStatus, DeployRecord, UpstreamStatus } from './status.ts';
import type { TargetRegistry } from './targets/registry.ts';
import type { CertificateManager } from './tls/index.ts';
import type { SessionTickets } from './tls/session-tickets.ts';

/** Docker access: containers of deployable services, followed through Docker events. */
export interface DockerRuntime {
  containers(): Promise<ContainerStatus[]>;
  stop(): Promise<void>;
}

/** Deploys and their persisted history. */
export interface DeployService {
  history(service?: string): DeployRecord[];
  /** Image digest a rollback of `service` would go back to. */
  previousDigest(service: string): string | undefined;
  rollback(service: string): Promise<DeployRecord>;
  stop(): Promise<void>;
}

/** Active health checks of every upstream. */
export interface HealthMonitor {
  status(): UpstreamStatus[];
  stop(): Promise<void>;
}

/** Decides whether a client may reach a site, from the Docker network the client is on. */
export interface NetworkGuard {
  /** False when `clientAddress` is a container on a Docker network other than the site's. */
  allows(clientAddress: string, site: SiteConfig): boolean;
}

/** Everything the modules share. Built once in edge.ts; later modules see earlier ones. */
export interface EdgeContext {
  config: EdgeConfig;
  logger: Logger;
  targets: TargetRegistry;
  api: EdgeApi;
  certificates: CertificateManager;
  /** One entry per route, in config order. */
  routeStats: RouteStats[];
  /** Process start, milliseconds since the epoch. */
  startedAt: number;
  docker?: DockerRuntime;
  deploys?: DeployService;
  health?: HealthMonitor;
  networkGuard?: NetworkGuard;
  /** Full garbage collections once a load is over. */
  idleCollector?: IdleCollector;
  /** TLS 1.3 session tickets per full handshake; without it OpenSSL's default of two applies. */
  sessionTickets?: SessionTickets;
}
