import type { RouteConfig } from '../config/schema.ts';
import type { EdgeContext } from '../context.ts';
import { errorMessage } from '../errors.ts';
import type { RouteStats } from '../stats.ts';
import type {
  CertificateStatus,
  ContainerStatus,
  DeployRecord,
  UpstreamStatus,
} from '../status.ts';
import type { EdgeSampler } from './edge-stats.ts';
import { OPENSSL_DEFAULT_SESSION_TICKETS } from '../tls/session-tickets.ts';
import { redactSecrets } from './redact.ts';
import type {
  CertificateItem,
  ContainerItem,
  DeployItem,
  DeploysSection,
  EdgeSection,
  RouteItem,
  SiteItem,
  StatusReport,
  UpstreamItem,
} from './status-types.ts';
import { EDGE_VERSION } from './version.ts';

/** A certificate with fewer days left than this is shown as an alert. */
export const CERTIFICATE_ALERT_DAYS = 7;
/** Finished deploys listed in the status. */
export const RECENT_DEPLOYS = 20;
/** Maximum wait for the container list, so a stuck Docker daemon cannot hang the page. */
export const CONTAINERS_TIMEOUT_MS = 2_000;

const DAY_MS = 24 * 60 * 60 * 1000;

export interface StatusSources {
  context: EdgeContext;
  sampler: EdgeSampler;
  /** Secret values to remove from every string of the report. */
  secrets: string[];
  now?: () => number;
}

/** Collects the status of every module into one report with secrets removed. */
export async function buildStatusReport(sources: StatusSources): Promise<StatusReport> {
  const { context } = sources;
  const now = (sources.now ?? Date.now)();
  const upstreams = context.health?.status() ?? [];

  const report: StatusReport = {
    schemaVersion: 1,
    generatedAt: new Date(now).toISOString(),
    edge: edgeSection(context, sources.sampler, now),
    sites: siteItems(context, upstreams),
    upstreams: { configured: context.health !== undefined, items: upstreams.map(upstreamItem) },
    containers: await containersSection(context),
    certificates: context.certificates.status().map((status) => certificateItem(status, now)),
    deploys: deploysSection(context),
  };
  return redactSecrets(report, sources.secrets);
}

function edgeSection(context: EdgeContext, sampler: EdgeSampler, now: number): EdgeSection {
  const memory = process.memoryUsage();
  const delay = sampler.eventLoopDelay();
  const idle = context.idleCollector?.status();
  return {
    version: EDGE_VERSION,
    startedAt: new Date(context.startedAt).toISOString(),
    uptimeS: Math.max(0, Math.floor((now - context.startedAt) / 1000)),
    memory: {
      rssBytes: memory.rss,
      heapUsedBytes: memory.heapUsed,
      heapTotalBytes: memory.heapTotal,
      idleCollections: idle?.collections ?? 0,
      lastIdleCollectionAt: idle?.latest ? new Date(idle.latest.at).toISOString() : null,
      // A heap that grew during the collection gave nothing back.
      lastIdleCollectionFreedBytes: idle?.latest
        ? Math.max(0, idle.latest.heapTotalBefore - idle.latest.heapTotalAfter)
        : null,
      mallocTrim: idle?.mallocTrim ?? false,
    },
    tls: { sessionTickets: context.sessionTickets?.count ?? OPENSSL_DEFAULT_SESSION_TICKETS },
    eventLoopDelayMs: { mean: delay.meanMs, p50: delay.p50Ms, p99: delay.p99Ms, max: delay.maxMs },
    ...sampler.rates(),
  };
}

function siteItems(context: EdgeContext, upstreams: UpstreamStatus[]): SiteItem[] {
  return context.config.sites.map((site) => ({
    name: site.name,
    hosts: [...site.hosts],
    routes: site.routes.map((route) => {
      const stats = context.routeStats.find((s) => s.site === site.name && s.route === route.path);
      const health = upstreams.find((u) => u.site === site.name && u.route === route.path);
      return routeItem(route, stats, health);
    }),
  }));
}

function routeItem(
  route: RouteConfig,
  stats: RouteStats | undefined,
  health?: UpstreamStatus,
): RouteItem {
  let kind: RouteItem['kind'] = 'static';
  if (route.upstream !== undefined) kind = 'upstream';
  else if (route.service !== undefined) kind = 'service';

  const counts = stats?.statusClasses;
  return {
    path: route.path,
    kind,
    target: route.upstream ?? route.service ?? route.static ?? '',
    requests: stats?.requests ?? 0,
    responses: {
      '1xx': counts?.[1] ?? 0,
      '2xx': counts?.[2] ?? 0,
      '3xx': counts?.[3] ?? 0,
      '4xx': counts?.[4] ?? 0,
      '5xx': counts?.[5] ?? 0,
    },
    healthy: health?.healthy ?? null,
  };
}

function upstreamItem(status: UpstreamStatus): UpstreamItem {
  return {
    site: status.site,
    route: status.route,
    target: status.target === '' ? null : status.target,
    healthy: status.healthy ?? null,
    latencyMs: status.latencyMs ?? null,
    lastError: status.lastError ?? null,
    lastErrorAt: status.lastErrorAt ?? null,
    since: status.since ?? null,
    checkedAt: status.checkedAt ?? null,
  };
}

async function containersSection(context: EdgeContext): Promise<StatusReport['containers']> {
  if (context.docker === undefined) return { configured: false, items: [], error: null };

  const listed = await listContainers(context);
  return { configured: true, items: listed.items.map(containerItem), error: listed.error };
}

/** Last container listing error per context, so a lasting Docker outage is warned about once. */
const lastContainersError = new WeakMap<EdgeContext, string>();

/**
 * Lists the containers of the deployable services within CONTAINERS_TIMEOUT_MS. A failure is
 * returned as `error`; it is logged as a warning when it differs from the previous one.
 */
export async function listContainers(
  context: EdgeContext,
): Promise<{ items: ContainerStatus[]; error: string | null }> {
  if (context.docker === undefined) return { items: [], error: null };

  try {
    const items = await withTimeout(context.docker.containers(), CONTAINERS_TIMEOUT_MS);
    lastContainersError.delete(context);
    return { items, error: null };
  } catch (error) {
    const message = errorMessage(error);
    const repeated = lastContainersError.get(context) === message;
    lastContainersError.set(context, message);
    context.logger[repeated ? 'debug' : 'warn']({ err: message }, 'listing containers failed');
    return { items: [], error: message };
  }
}

function containerItem(status: ContainerStatus): ContainerItem {
  return {
    service: status.service,
    container: status.container,
    id: status.id ?? null,
    image: status.image ?? null,
    digest: status.digest ?? null,
    state: status.state,
    startedAt: status.startedAt ?? null,
    restartCount: status.restartCount ?? null,
    address: status.address ?? null,
  };
}

/** Returns a certificate's status with days left and the alert flag computed at `now`. */
export function certificateItem(status: CertificateStatus, now: number): CertificateItem {
  const notAfter = status.notAfter === undefined ? NaN : Date.parse(status.notAfter);
  const daysLeft = Number.isNaN(notAfter)
    ? null
    : Math.floor(((notAfter - now) / DAY_MS) * 10) / 10;
  return {
    names: [...status.names],
    state: status.state,
    directory: status.directory,
    issuer: status.issuer ?? null,
    serial: status.serial ?? null,
    notBefore: status.notBefore ?? null,
    notAfter: status.notAfter ?? null,
    daysLeft,
    alert: daysLeft !== null && daysLeft < CERTIFICATE_ALERT_DAYS,
    lastAttemptAt: status.lastAttemptAt ?? null,
    nextAttemptAt: status.nextAttemptAt ?? null,
    lastError:
      status.lastError === undefined
        ? null
        : {
            message: status.lastError.message,
            type: status.lastError.type ?? null,
            at: status.lastError.at,
          },
    rateLimitedUntil: status.rateLimitedUntil ?? null,
  };
}

function deploysSection(context: EdgeContext): DeploysSection {
  const services = Object.entries(context.config.services).map(([service, config]) => ({
    service,
    container: config.container,
    image: config.image,
    previousDigest: context.deploys?.previousDigest(service) ?? null,
  }));
  if (context.deploys === undefined) {
    return { configured: false, running: [], recent: [], services };
  }

  const history = [...context.deploys.history()].sort((a, b) =>
    b.startedAt.localeCompare(a.startedAt),
  );
  return {
    configured: true,
    running: history.filter((record) => record.state === 'running').map(deployItem),
    recent: history
      .filter((record) => record.state !== 'running')
      .slice(0, RECENT_DEPLOYS)
      .map(deployItem),
    services,
  };
}

function deployItem(record: DeployRecord): DeployItem {
  return {
    id: record.id,
    service: record.service,
    image: record.image,
    digest: record.digest ?? null,
    previousDigest: record.previousDigest ?? null,
    commit: record.commit ?? null,
    ref: record.ref ?? null,
    rollback: record.rollback ?? false,
    state: record.state,
    failedStep: record.failedStep ?? null,
    error: record.error ?? null,
    startedAt: record.startedAt,
    finishedAt: record.finishedAt ?? null,
    durationMs: record.durationMs ?? null,
    steps: record.steps.map((step) => ({
      name: step.name,
      status: step.status,
      durationMs: step.durationMs ?? null,
      message: step.message ?? null,
    })),
  };
}

/** Rejects when `promise` has not settled within `timeoutMs`. */
function withTimeout<T>(promise: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
