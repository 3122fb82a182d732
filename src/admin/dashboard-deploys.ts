import type { DashboardView } from './dashboard.ts';
import { actionForm } from './forms.ts';
import { badge, formatDuration, formatTime, html, type Html } from './html.ts';
import type { DeployItem, StatusReport } from './status-types.ts';

/** Renders the containers of the deployable services. */
export function containersSection(report: StatusReport, view: DashboardView): Html {
  const containers = report.containers;
  if (!containers.configured)
    return html`<section id="containers">
      <h2>Containers</h2>
      <p class="muted">Docker not configured.</p>
    </section>`;

  const error =
    containers.error === null
      ? ''
      : html`<p class="error-text">Listing containers failed: ${containers.error}</p>`;
  const rows = containers.items.map(
    (c) =>
      html`<tr>
        <td>${c.service}</td>
        <td><code>${c.container}</code></td>
        <td><code>${c.image ?? '–'}</code></td>
        <td><code>${shortDigest(c.digest)}</code></td>
        <td>${c.state === 'running' ? badge('ok', c.state) : badge('bad', c.state)}</td>
        <td>${formatTime(c.startedAt, view.now)}</td>
        <td class="num">${c.restartCount ?? '–'}</td>
      </tr>`,
  );
  const empty =
    rows.length === 0 && containers.error === null
      ? html`<p class="muted">No containers of deployable services.</p>`
      : '';
  return html`<section id="containers">
    <h2>Containers</h2>
    ${error}${empty}
    <table>
      <thead>
        <tr>
          <th>Service</th>
          <th>Container</th>
          <th>Image</th>
          <th>Digest</th>
          <th>State</th>
          <th>Started</th>
          <th>Restarts</th>
        </tr>
      </thead>
      <tbody>
        ${rows}
      </tbody>
    </table>
  </section>`;
}

/** Renders running and recent deploys and the rollback target of each service. */
export function deploysSection(report: StatusReport, view: DashboardView): Html {
  const deploys = report.deploys;
  if (!deploys.configured)
    return html`<section id="deploys">
      <h2>Deploys</h2>
      <p class="muted">Deploys not configured.</p>
    </section>`;

  const head = html`<thead>
    <tr>
      <th>Service</th>
      <th>Image</th>
      <th>Commit</th>
      <th>Result</th>
      <th>Failed step</th>
      <th>Duration</th>
      <th>Started</th>
    </tr>
  </thead>`;
  const running =
    deploys.running.length === 0
      ? html`<p class="muted">No deploy running.</p>`
      : html`<table>
          ${head}
          <tbody>
            ${deploys.running.map((d) => deployRow(d, view))}
          </tbody>
        </table>`;
  const recent =
    deploys.recent.length === 0
      ? html`<p class="muted">No deploys yet.</p>`
      : html`<table>
          ${head}
          <tbody>
            ${deploys.recent.map((d) => deployRow(d, view))}
          </tbody>
        </table>`;
  const services = deploys.services.map((service) => {
    const form =
      service.previousDigest === null
        ? html`<span class="muted">nothing to roll back to</span>`
        : actionForm(
            '/_edge/actions/rollback',
            { service: service.service },
            'Roll back',
            `Roll back ${service.service} to ${shortDigest(service.previousDigest)}?`,
            view.csrfToken,
          );
    return html`<tr>
      <td>${service.service}</td>
      <td><code>${service.image}</code></td>
      <td><code>${shortDigest(service.previousDigest)}</code></td>
      <td>${form}</td>
    </tr>`;
  });
  return html`<section id="deploys">
    <h2>Deploys</h2>
    <h3>Running</h3>
    ${running}
    <h3>Recent</h3>
    ${recent}
    <h3>Rollback</h3>
    <table>
      <thead>
        <tr>
          <th>Service</th>
          <th>Repository</th>
          <th>Previous digest</th>
          <th></th>
        </tr>
      </thead>
      <tbody>
        ${services}
      </tbody>
    </table>
  </section>`;
}

function deployRow(deploy: DeployItem, view: DashboardView): Html {
  const result =
    deploy.state === 'succeeded'
      ? badge('ok', 'succeeded')
      : deploy.state === 'failed'
        ? badge('bad', 'failed')
        : badge('warn', deploy.state);
  const kind = deploy.rollback ? html` <span class="muted">(rollback)</span>` : '';
  const failed =
    deploy.failedStep === null
      ? '–'
      : html`${deploy.failedStep}${deploy.error === null ? '' : html`<div class="error-text">${deploy.error}</div>`}`;
  return html`<tr>
    <td>${deploy.service}${kind}</td>
    <td><code>${deploy.image}</code></td>
    <td class="nowrap"><code>${deploy.commit?.slice(0, 12) ?? '–'}</code></td>
    <td>${result}</td>
    <td>${failed}</td>
    <td class="num">${deploy.durationMs === null ? '–' : formatDuration(deploy.durationMs)}</td>
    <td>${formatTime(deploy.startedAt, view.now)}</td>
  </tr>`;
}

/** Returns the first 12 hex digits of an image digest, as `docker images` shows it. */
export function shortDigest(digest: string | null): string {
  if (digest === null) return '–';
  return digest.replace(/^sha256:/, '').slice(0, 12);
}
