import {
  collectDefaultMetrics,
  Counter,
  Gauge,
  Histogram,
  Registry,
  type Metric,
} from 'prom-client';
import type { EdgeContext } from '../context.ts';
import { DURATION_BUCKETS_S, type RouteStats } from '../stats.ts';
import type { DeployRecord } from '../status.ts';
import { redactSecrets } from './redact.ts';
import { listContainers } from './status-report.ts';
import { EDGE_VERSION } from './version.ts';

/** Buckets of the deploy duration histogram, in seconds: a deploy takes seconds to minutes. */
export const DEPLOY_DURATION_BUCKETS_S = [1, 5, 10, 30, 60, 120, 300, 600, 1800];

const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;

/**
 * The Prometheus registry of the edge. Request figures are read from the RouteStats counters at
 * scrape time, so the request path never calls prom-client. Finished deploys are counted when a
 * scrape first finds them in the history, which after a restart includes the persisted history.
 */
export class EdgeMetrics {
  readonly registry = new Registry();
  private readonly context: EdgeContext;
  private readonly secrets: string[];
  private readonly countedDeploys = new Set<string>();
  private readonly deploysTotal: Counter<'service' | 'kind' | 'result'>;
  private readonly deployDuration: Histogram<'service' | 'kind' | 'result'>;

  constructor(context: EdgeContext, secrets: string[]) {
    this.context = context;
    this.secrets = secrets;
    collectDefaultMetrics({ register: this.registry });
    this.registerRequestMetrics();
    this.registerUpstreamMetrics();
    this.registerCertificateMetrics();
    this.registerContainerMetrics();

    // Both deploy metrics count new history entries in collect(), because the registry reads
    // metrics in parallel and neither may be read before the other has counted.
    const labelNames = ['service', 'kind', 'result'] as const;
    this.deploysTotal = new Counter({
      name: 'edge_deploys_total',
      help: 'Finished deploys and rollbacks by service and result.',
      labelNames,
      registers: [this.registry],
      collect: () => this.countNewDeploys(),
    });
    this.deployDuration = new Histogram({
      name: 'edge_deploy_duration_seconds',
      help: 'Duration of finished deploys and rollbacks.',
      labelNames,
      buckets: DEPLOY_DURATION_BUCKETS_S,
      registers: [this.registry],
      collect: () => this.countNewDeploys(),
    });
    this.registerDeployMetrics();
  }

  /** Returns the exposition text with secret values removed. */
  async scrape(): Promise<string> {
    return redactSecrets(await this.registry.metrics(), this.secrets);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private registerRequestMetrics(): void {
    const stats = () => this.context.routeStats;
    new Gauge({
      name: 'edge_build_info',
      help: 'Version of the running edge; the value is always 1.',
      labelNames: ['version'],
      registers: [this.registry],
      collect() {
        this.set({ version: EDGE_VERSION }, 1);
      },
    });
    new Counter({
      name: 'edge_http_requests_total',
      help: 'Requests by site, route and response status class.',
      labelNames: ['site', 'route', 'status_class'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const route of stats()) {
          for (let index = 1; index <= 5; index++) {
            const labels = {
              site: route.site,
              route: route.route,
              status_class: STATUS_CLASSES[index - 1]!,
            };
            this.inc(labels, route.statusClasses[index]!);
          }
        }
      },
    });
    new Counter({
      name: 'edge_http_response_bytes_total',
      help: 'Response body bytes sent by site and route.',
      labelNames: ['site', 'route'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const route of stats())
          this.inc({ site: route.site, route: route.route }, route.bytesSent);
      },
    });
    // prom-client cannot load a histogram from existing counts, so this object builds the
    // samples itself. The registry only needs name, help, type and get().
    const durations = {
      name: 'edge_http_request_duration_seconds',
      help: 'Request duration from the first byte received to the last byte sent.',
      type: 'histogram',
      aggregator: 'sum',
      get: async () => ({ ...durations, values: stats().flatMap(durationSamples) }),
      reset: () => undefined,
    };
    this.registry.registerMetric(durations as unknown as Metric);
  }

  private registerUpstreamMetrics(): void {
    const health = () => this.context.health?.status() ?? [];
    new Gauge({
      name: 'edge_upstream_healthy',
      help: 'Result of the last health probe of the route upstream: 1 healthy, 0 unhealthy.',
      labelNames: ['site', 'route', 'target'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const status of health()) {
          if (status.healthy === undefined) continue;
          this.set(
            { site: status.site, route: status.route, target: status.target },
            status.healthy ? 1 : 0,
          );
        }
      },
    });
    new Gauge({
      name: 'edge_upstream_probe_latency_seconds',
      help: 'Time until the response head of the last answered health probe.',
      labelNames: ['site', 'route'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const status of health()) {
          if (status.latencyMs === undefined) continue;
          this.set({ site: status.site, route: status.route }, status.latencyMs / 1000);
        }
      },
    });
  }

  private registerCertificateMetrics(): void {
    const certificates = () => this.context.certificates.status();
    new Gauge({
      name: 'edge_certificate_expiry_seconds',
      help: 'Seconds until the certificate expires; negative once expired.',
      labelNames: ['name', 'state'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const status of certificates()) {
          const notAfter = status.notAfter === undefined ? NaN : Date.parse(status.notAfter);
          if (Number.isNaN(notAfter)) continue;
          this.set(
            { name: status.names[0] ?? '', state: status.state },
            (notAfter - Date.now()) / 1000,
          );
        }
      },
    });
    new Gauge({
      name: 'edge_certificate_renewal_error',
      help: 'Whether the last issuance or renewal attempt of the certificate failed: 1 yes, 0 no.',
      labelNames: ['name'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const status of certificates()) {
          this.set({ name: status.names[0] ?? '' }, status.lastError === undefined ? 0 : 1);
        }
      },
    });
  }

  private registerContainerMetrics(): void {
    const context = this.context;
    new Gauge({
      name: 'edge_container_running',
      help: 'Whether the container of a deployable service is running: 1 yes, 0 no.',
      labelNames: ['service', 'container'],
      registers: [this.registry],
      async collect() {
        this.reset();
        if (context.docker === undefined) return;

        const { items } = await listContainers(context);
        for (const container of items) {
          const labels = { service: container.service, container: container.container };
          this.set(labels, container.state === 'running' ? 1 : 0);
        }
      },
    });
  }

  private registerDeployMetrics(): void {
    const context = this.context;
    new Gauge({
      name: 'edge_deploys_running',
      help: 'Deploys in progress by service.',
      labelNames: ['service'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const service of Object.keys(context.config.services)) {
          const running = context.deploys?.history(service).filter((r) => r.state === 'running');
          this.set({ service }, running?.length ?? 0);
        }
      },
    });
  }

  /** Counts finished deploys not counted before, and drops ids that left the history. */
  private countNewDeploys(): void {
    const history = this.context.deploys?.history() ?? [];
    const present = new Set<string>();
    for (const record of history) {
      present.add(record.id);
      if (record.state === 'running' || this.countedDeploys.has(record.id)) continue;

      this.countedDeploys.add(record.id);
      const labels = deployLabels(record);
      this.deploysTotal.inc(labels);
      if (record.durationMs !== undefined)
        this.deployDuration.observe(labels, record.durationMs / 1000);
    }
    for (const id of this.countedDeploys) if (!present.has(id)) this.countedDeploys.delete(id);
  }
}

function durationSamples(route: RouteStats) {
  const labels = { site: route.site, route: route.route };
  const samples = [];
  let cumulative = 0;
  for (let index = 0; index < DURATION_BUCKETS_S.length; index++) {
    cumulative += route.durationBuckets[index]!;
    const le = String(DURATION_BUCKETS_S[index]);
    samples.push({
      metricName: 'edge_http_request_duration_seconds_bucket',
      labels: { ...labels, le },
      value: cumulative,
    });
  }
  samples.push(
    {
      metricName: 'edge_http_request_duration_seconds_bucket',
      labels: { ...labels, le: '+Inf' },
      value: route.requests,
    },
    { metricName: 'edge_http_request_duration_seconds_sum', labels, value: route.durationSum },
    { metricName: 'edge_http_request_duration_seconds_count', labels, value: route.requests },
  );
  return samples;
}

function deployLabels(record: DeployRecord): { service: string; kind: string; result: string } {
  return {
    service: record.service,
    kind: record.rollback === true ? 'rollback' : 'deploy',
    result: record.state,
  };
}
