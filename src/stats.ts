/** Upper bounds, in seconds, of the request duration histogram buckets. */
export const DURATION_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * Counters of one route, kept as plain numbers so the request path pays a few additions and no
 * label lookups. The metrics endpoint reads them when it is scraped.
 */
export class RouteStats {
  readonly site: string;
  readonly route: string;
  requests = 0;
  /** Responses by status class: index 1 is 1xx up to index 5 for 5xx. */
  readonly statusClasses = new Float64Array(6);
  bytesSent = 0;
  readonly durationBuckets = new Float64Array(DURATION_BUCKETS_S.length);
  durationSum = 0;

  constructor(site: string, route: string) {
    this.site = site;
    this.route = route;
  }

  /** Records one finished request. */
  record(status: number, durationMs: number, bytes: number): void {
    this.requests++;
    const statusClass = (status / 100) | 0;
    if (statusClass >= 1 && statusClass <= 5) this.statusClasses[statusClass]!++;
    this.bytesSent += bytes;
    const seconds = durationMs / 1000;
    this.durationSum += seconds;
    for (let i = 0; i < DURATION_BUCKETS_S.length; i++) {
      if (seconds <= DURATION_BUCKETS_S[i]!) {
        this.durationBuckets[i]!++;
        break;
      }
    }
  }
}
