/**
 * The `/_edge/status` JSON document. Field names are stable: a field is added, never renamed or
 * removed, without raising `schemaVersion`. Absent values are `null`, times are ISO 8601 strings,
 * durations milliseconds unless the name ends in S (seconds).
 */
export interface StatusReport {
  schemaVersion: 1;
  generatedAt: string;
  edge: EdgeSection;
  sites: SiteItem[];
  upstreams: { configured: boolean; items: UpstreamItem[] };
  containers: { configured: boolean; items: ContainerItem[]; error: string | null };
  certificates: CertificateItem[];
  deploys: DeploysSection;
}

export interface EdgeSection {
  version: string;
  startedAt: string;
  uptimeS: number;
  memory: {
    rssBytes: number;
    heapUsedBytes: number;
    heapTotalBytes: number;
    /** Full garbage collections run once a load was over. */
    idleCollections: number;
    lastIdleCollectionAt: string | null;
    /**
     * V8 heap the latest of them gave back. The RSS falls by more, but only after V8's threads
     * unmap the pages, so it cannot be read when the collection returns.
     */
    lastIdleCollectionFreedBytes: number | null;
    /** Whether glibc's malloc_trim follows each idle collection (the addon loaded). */
    mallocTrim: boolean;
  };
  tls: {
    /** TLS 1.3 session tickets sent after each full handshake: 1, or OpenSSL's 2 without the addon. */
    sessionTickets: number;
  };
  eventLoopDelayMs: { mean: number; p50: number; p99: number; max: number };
  requestsTotal: number;
  requestsPerSecond: number;
  /** 4xx responses per second. */
  rate4xx: number;
  /** 5xx responses per second. */
  rate5xx: number;
}

export type StatusClass = '1xx' | '2xx' | '3xx' | '4xx' | '5xx';

export interface SiteItem {
  name: string;
  hosts: string[];
  routes: RouteItem[];
}

export interface RouteItem {
  path: string;
  kind: 'upstream' | 'service' | 'static';
  /** Upstream URL, service name or static directory. */
  target: string;
  requests: number;
  responses: Record<StatusClass, number>;
  /** Health of the route's upstream; null for static routes and before the first probe. */
  healthy: boolean | null;
}

export interface UpstreamItem {
  site: string;
  route: string;
  /** Origin probed, or null when a service has no container. */
  target: string | null;
  healthy: boolean | null;
  latencyMs: number | null;
  lastError: string | null;
  lastErrorAt: string | null;
  since: string | null;
  checkedAt: string | null;
}

export interface ContainerItem {
  service: string;
  container: string;
  id: string | null;
  image: string | null;
  digest: string | null;
  state: string;
  startedAt: string | null;
  restartCount: number | null;
  address: string | null;
}

export interface CertificateItem {
  names: string[];
  state: string;
  /** ACME directory URL, or `file` / `self-signed`. */
  directory: string;
  issuer: string | null;
  serial: string | null;
  notBefore: string | null;
  notAfter: string | null;
  /** Days until notAfter, one decimal, negative once expired. */
  daysLeft: number | null;
  /** True when fewer than CERTIFICATE_ALERT_DAYS are left. */
  alert: boolean;
  lastAttemptAt: string | null;
  nextAttemptAt: string | null;
  lastError: { message: string; type: string | null; at: string } | null;
  rateLimitedUntil: string | null;
}

export interface DeploysSection {
  configured: boolean;
  running: DeployItem[];
  /** Finished deploys, newest first. */
  recent: DeployItem[];
  services: ServiceDeployItem[];
}

export interface DeployItem {
  id: string;
  service: string;
  image: string;
  digest: string | null;
  previousDigest: string | null;
  commit: string | null;
  ref: string | null;
  rollback: boolean;
  state: string;
  failedStep: string | null;
  error: string | null;
  startedAt: string;
  finishedAt: string | null;
  durationMs: number | null;
  steps: { name: string; status: string; durationMs: number | null; message: string | null }[];
}

export interface ServiceDeployItem {
  service: string;
  container: string;
  /** Image repository deploys may use. */
  image: string;
  /** Digest a rollback would return to, or null when there is none. */
  previousDigest: string | null;
}
