import { html, type Html } from './html.ts';

/**
 * A POST form with the CSRF token. A non-empty `question` is shown by JavaScript. Without
 * JavaScript, `confirm` stays empty and the server shows the question on a second page.
 */
export function actionForm(
  action: string,
  fields: Record<string, string>,
  label: string,
  question: string,
  csrfToken: string,
  buttonClass = 'danger',
): Html {
  const inputs = Object.entries(fields).map(
    ([name, value]) => html`<input type="hidden" name="${name}" value="${value}" />`,
  );
  return html`<form class="inline" method="post" action="${action}" data-confirm="${question}">
    ${inputs}<input type="hidden" name="csrf" value="${csrfToken}" /><input
      type="hidden"
      name="confirm"
      value=""
    /><button class="${buttonClass}" type="submit">${label}</button>
  </form>`;
}
