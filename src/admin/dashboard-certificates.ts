import { isAcmeDirectory } from './actions.ts';
import type { DashboardView } from './dashboard.ts';
import { actionForm } from './forms.ts';
import { badge, formatTime, html, type Html } from './html.ts';
import type { CertificateItem, StatusReport } from './status-types.ts';

/** Renders the certificates with expiry, renewal state and a renew button for ACME ones. */
export function certificatesSection(report: StatusReport, view: DashboardView): Html {
  const rows = report.certificates.map((certificate) => certificateRow(certificate, view));
  const empty = rows.length === 0 ? html`<p class="muted">No certificates.</p>` : '';
  return html`<section id="certificates">
    <h2>Certificates</h2>
    ${empty}
    <table>
      <thead>
        <tr>
          <th>Names</th>
          <th>State</th>
          <th>Issuer</th>
          <th>Expires</th>
          <th>Days left</th>
          <th>Next attempt</th>
          <th>Last error</th>
          <th></th>
        </tr>
      </thead>
      <tbody>
        ${rows}
      </tbody>
    </table>
  </section>`;
}

function certificateRow(certificate: CertificateItem, view: DashboardView): Html {
  const name = certificate.names[0] ?? '';
  const days =
    certificate.daysLeft === null
      ? badge('none', '–')
      : badge(certificate.alert ? 'bad' : 'ok', `${certificate.daysLeft} d`);
  const state =
    certificate.state === 'valid' || certificate.state === 'static'
      ? badge('ok', certificate.state)
      : badge(certificate.state === 'failed' ? 'bad' : 'warn', certificate.state);
  const limited =
    certificate.rateLimitedUntil === null
      ? ''
      : html`<div class="error-text">
          rate-limited until ${formatTime(certificate.rateLimitedUntil, view.now)}
        </div>`;
  const lastError =
    certificate.lastError === null
      ? html`<span class="muted">–</span>`
      : html`<span class="error-text">${certificate.lastError.message}</span>
          <span class="muted">(${formatTime(certificate.lastError.at, view.now)})</span>`;
  const form = isAcmeDirectory(certificate.directory)
    ? actionForm(
        '/_edge/actions/renew',
        { name },
        'Renew now',
        `Renew the certificate for ${name} now?`,
        view.csrfToken,
      )
    : '';
  return html`<tr>
    <td>${certificate.names.map((n) => html`<div><code>${n}</code></div>`)}</td>
    <td>${state}</td>
    <td>
      ${certificate.issuer ?? ''}
      <div class="muted"><code>${certificate.directory}</code></div>
    </td>
    <td>${formatTime(certificate.notAfter, view.now)}</td>
    <td>${days}</td>
    <td>${formatTime(certificate.nextAttemptAt, view.now)}</td>
    <td>${lastError}${limited}</td>
    <td>${form}</td>
  </tr>`;
}
