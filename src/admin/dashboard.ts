import { certificatesSection } from './dashboard-certificates.ts';
import { containersSection, deploysSection } from './dashboard-deploys.ts';
import { badge, formatBytes, formatDuration, formatTime, html, type Html } from './html.ts';
import type { RouteItem, SiteItem, StatusReport, UpstreamItem } from './status-types.ts';

export interface DashboardView {
  csrfToken: string;
  now: number;
  flash?: { kind: 'info' | 'error'; text: string };
}

/** Renders the body of the admin page from the same report `/_edge/status` returns. */
export function renderDashboard(report: StatusReport, view: DashboardView): Html {
  const flash =
    view.flash === undefined
      ? ''
      : html`<div class="notice ${view.flash.kind === 'error' ? 'bad' : 'ok'}" role="status">
          ${view.flash.text}
        </div>`;
  return html`${flash} ${edgeSection(report, view)} ${sitesSection(report, view)}
    ${containersSection(report, view)} ${certificatesSection(report, view)}
    ${deploysSection(report, view)}
    <p class="muted">
      Generated ${formatTime(report.generatedAt, view.now)}. Also as
      <a href="/_edge/status">JSON</a> and <a href="/_edge/metrics">Prometheus metrics</a>.
    </p>`;
}

function edgeSection(report: StatusReport, view: DashboardView): Html {
  const edge = report.edge;
  const card = (label: string, value: string, kind?: 'bad' | 'warn') =>
    html`<div class="card${kind === undefined ? '' : ` ${kind}`}">
      <div class="label">${label}</div>
      <div class="value">${value}</div>
    </div>`;
  return html`<section id="edge">
    <h2>Edge</h2>
    <div class="cards">
      ${card('Version', edge.version)}
      ${card('Uptime', edge.uptimeS < 1 ? '< 1 s' : formatDuration(edge.uptimeS * 1000))}
      ${card('Requests / s', edge.requestsPerSecond.toFixed(2))}
      ${card('4xx / s', edge.rate4xx.toFixed(2), edge.rate4xx > 0 ? 'warn' : undefined)}
      ${card('5xx / s', edge.rate5xx.toFixed(2), edge.rate5xx > 0 ? 'bad' : undefined)}
      ${card('Memory (RSS)', formatBytes(edge.memory.rssBytes))}
      ${card('Heap used', formatBytes(edge.memory.heapUsedBytes))}
      ${card('Event-loop delay p99', `${edge.eventLoopDelayMs.p99.toFixed(1)} ms`)}
    </div>
    <p class="muted">
      Started ${formatTime(edge.startedAt, view.now)}, ${edge.requestsTotal} requests since.
      ${idleCollectionNote(edge, view)}
    </p>
  </section>`;
}

function idleCollectionNote(edge: StatusReport['edge'], view: DashboardView): Html | string {
  const { lastIdleCollectionAt: at, lastIdleCollectionFreedBytes: freed } = edge.memory;
  if (at === null) return '';

  const freedText = formatBytes(Math.max(0, freed ?? 0));
  return html`Last garbage collection after a load ${formatTime(at, view.now)}, ${freedText} of heap
  given back.`;
}

function sitesSection(report: StatusReport, view: DashboardView): Html {
  const sites = report.sites.map((site) => siteTable(site, report.upstreams.items, view));
  const note = report.upstreams.configured
    ? ''
    : html`<p class="muted">Health checks not configured.</p>`;
  return html`<section id="sites">
    <h2>Sites and routes</h2>
    ${note}${sites}
  </section>`;
}

function siteTable(site: SiteItem, upstreams: UpstreamItem[], view: DashboardView): Html {
  const rows = site.routes.map((route) => {
    const health = upstreams.find((u) => u.site === site.name && u.route === route.path);
    return routeRow(route, health, view);
  });
  return html`<h3>${site.name} <span class="muted">${site.hosts.join(', ')}</span></h3>
    <table>
      <thead>
        <tr>
          <th>Route</th>
          <th>Target</th>
          <th>Health</th>
          <th>Latency</th>
          <th>Last error</th>
          <th>Since</th>
          <th>Requests</th>
          <th>4xx</th>
          <th>5xx</th>
        </tr>
      </thead>
      <tbody>
        ${rows}
      </tbody>
    </table>`;
}

function routeRow(route: RouteItem, health: UpstreamItem | undefined, view: DashboardView): Html {
  const target =
    route.kind === 'static'
      ? html`<span class="muted">static</span> <code>${route.target}</code>`
      : html`<span class="muted">${route.kind}</span>
          <code>${health?.target ?? route.target}</code>`;
  const latency = health?.latencyMs == null ? '–' : `${health.latencyMs} ms`;
  const lastError =
    health?.lastError == null
      ? html`<span class="muted">–</span>`
      : html`<span class="${health.healthy === false ? 'error-text' : 'muted'}"
            >${health.lastError}</span
          >
          ${health.healthy === false ? '' : html`<span class="muted">(${formatTime(health.lastErrorAt, view.now)})</span>`}`;
  return html`<tr>
    <td><code>${route.path}</code></td>
    <td>${target}</td>
    <td>${healthBadge(route, health)}</td>
    <td class="num">${latency}</td>
    <td>${lastError}</td>
    <td>${health === undefined ? '–' : formatTime(health.since, view.now)}</td>
    <td class="num">${route.requests}</td>
    <td class="num">${route.responses['4xx']}</td>
    <td class="num">${route.responses['5xx']}</td>
  </tr>`;
}

function healthBadge(route: RouteItem, health: UpstreamItem | undefined): Html {
  if (route.kind === 'static') return badge('none', 'no upstream');
  if (health === undefined || health.healthy === null) return badge('none', 'unknown');
  return health.healthy ? badge('ok', 'healthy') : badge('bad', 'unhealthy');
}
