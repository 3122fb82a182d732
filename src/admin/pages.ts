import { html, renderPage, type Html } from './html.ts';

/** Renders the login form, with `error` above it after a failed attempt. */
export function renderLoginPage(nonce: string, error?: string): string {
  const message =
    error === undefined ? '' : html`<div class="notice bad" role="alert">${error}</div>`;
  const body = html`<section class="login">
    <h2>Log in</h2>
    ${message}
    <form method="post" action="/_edge/login">
      <label for="password">Admin password</label>
      <input
        id="password"
        name="password"
        type="password"
        autocomplete="current-password"
        required
        autofocus
      />
      <button type="submit">Log in</button>
    </form>
  </section>`;
  return renderPage({ title: 'Admin login', nonce, body });
}

/** Renders the page shown while no valid password hash is configured; it contains no status. */
export function renderDisabledPage(nonce: string, hashEnv: string): string {
  const body = html`<section class="login">
    <h2>Admin page disabled</h2>
    <p>No valid admin password hash is configured, so the admin page stays closed.</p>
    <p>
      Create a hash with <code>caliente-edge hash-password</code>, put it in the environment
      variable <code>${hashEnv}</code> and restart the edge.
    </p>
  </section>`;
  return renderPage({ title: 'Admin disabled', nonce, body });
}

/**
 * Renders the confirmation step of an action for browsers without JavaScript: the same form
 * again with `confirm=yes`.
 */
export function renderConfirmPage(
  nonce: string,
  action: string,
  question: string,
  fields: Record<string, string>,
  csrfToken: string,
): string {
  const inputs = Object.entries(fields).map(
    ([name, value]) => html`<input type="hidden" name="${name}" value="${value}" />`,
  );
  const body = html`<section class="login">
    <h2>Please confirm</h2>
    <p>${question}</p>
    <form method="post" action="${action}">
      ${inputs}<input type="hidden" name="csrf" value="${csrfToken}" />
      <input type="hidden" name="confirm" value="yes" /><button class="danger" type="submit">
        Yes, go ahead
      </button>
      <a href="/_edge/">Cancel</a>
    </form>
  </section>`;
  return renderPage({ title: 'Confirm', nonce, body });
}

/** Renders a short message page such as an error, with a link back to the admin page. */
export function renderMessagePage(
  nonce: string,
  title: string,
  message: string,
  link = true,
): string {
  const back: Html | string = link ? html`<p><a href="/_edge/">Back to the admin page</a></p>` : '';
  const body = html`<section class="login">
    <h2>${title}</h2>
    <p>${message}</p>
    ${back}
  </section>`;
  return renderPage({ title, nonce, body });
}
