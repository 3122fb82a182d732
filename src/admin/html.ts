/** Time between refreshes of the admin page when JavaScript is on. */
export const REFRESH_INTERVAL_MS = 10_000;

/** Escapes text for HTML element content and double-quoted attribute values. */
export function escapeHtml(value: unknown): string {
  return String(value ?? '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** Tagged template that escapes every interpolated value unless it is already `Html`. */
export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0]!;
  for (let index = 0; index < values.length; index++) {
    out += renderValue(values[index]) + strings[index + 1]!;
  }
  return new Html(out);
}

/** Markup that is already escaped. */
export class Html {
  readonly text: string;

  constructor(text: string) {
    this.text = text;
  }

  toString(): string {
    return this.text;
  }
}

export interface PageOptions {
  title: string;
  nonce: string;
  body: Html;
  /** Header actions such as the logout form. */
  headerActions?: Html;
  /** Adds the confirmation and refresh script. */
  script?: boolean;
}

/** Renders a complete page; the style and script carry the CSP nonce. */
export function renderPage(options: PageOptions): string {
  const script =
    options.script === true
      ? html`<script nonce="${options.nonce}">
          ${raw(PAGE_SCRIPT)};
        </script>`
      : '';
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="robots" content="noindex" />
        <link rel="icon" href="data:," />
        <title>${options.title} · caliente-edge</title>
        <style nonce="${options.nonce}">
          ${raw(PAGE_STYLE)}
        </style>
      </head>
      <body>
        <header>
          <span class="brand">caliente-edge</span
          ><span class="title">${options.title}</span>${options.headerActions ?? ''}
        </header>
        <main id="content">${options.body}</main>
        ${script}
      </body>
    </html> `.text;
}

/** Marks trusted markup (built here, never from request or status data) as HTML. */
export function raw(text: string): Html {
  return new Html(text);
}

/** Formats an ISO time as `2030-01-02 03:04 UTC (5 min ago)`. */
export function formatTime(iso: string | null, now: number): Html {
  if (iso === null) return html`<span class="muted">–</span>`;

  const at = Date.parse(iso);
  if (Number.isNaN(at)) return html`${iso}`;
  const absolute = iso.slice(0, 16).replace('T', ' ') + ' UTC';
  const delta = at - now;
  const relative = delta >= 0 ? `in ${formatDuration(delta)}` : `${formatDuration(-delta)} ago`;
  return html`<time datetime="${iso}" title="${iso}">${absolute}</time>
    <span class="muted">(${relative})</span>`;
}

/** Formats milliseconds as `850 ms`, `42 s`, `5 min`, `3 h 20 min` or `12 d 4 h`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const seconds = Math.floor(ms / 1000);
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ${minutes % 60} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} KiB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

/** Renders a coloured label: ok (green), warn (amber), bad (red) or none (grey). */
export function badge(kind: 'ok' | 'warn' | 'bad' | 'none', text: string): Html {
  return html`<span class="badge ${kind}">${text}</span>`;
}

function renderValue(value: unknown): string {
  if (value instanceof Html) return value.text;
  if (Array.isArray(value)) return value.map(renderValue).join('');
  return escapeHtml(value);
}

const PAGE_STYLE = `
:root{color-scheme:light dark;--fg:#1d2329;--muted:#69737d;--bg:#f6f7f9;--card:#fff;--line:#dfe3e8;
--ok:#137333;--okbg:#e6f4ea;--warn:#8a5300;--warnbg:#fef3d6;--bad:#b3261e;--badbg:#fce8e6;--none:#555;--nonebg:#eceff1}
@media (prefers-color-scheme:dark){:root{--fg:#e4e7ea;--muted:#9aa4ad;--bg:#14171a;--card:#1d2125;--line:#30363c;
--okbg:#17351f;--ok:#7fd69a;--warnbg:#3b2e0c;--warn:#f3c262;--badbg:#41191a;--bad:#ff9d95;--nonebg:#2a2f34;--none:#c0c6cc}}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);background:var(--bg)}
header{display:flex;gap:12px;align-items:center;padding:10px 20px;background:var(--card);border-bottom:1px solid var(--line)}
header .brand{font-weight:700}header .title{color:var(--muted);flex:1}
main{max-width:1200px;margin:0 auto;padding:16px 20px 40px}
section{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:14px 16px;margin:14px 0;overflow-x:auto}
h2{font-size:16px;margin:0 0 10px}h3{font-size:14px;margin:14px 0 6px;color:var(--muted)}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:6px 8px;border-top:1px solid var(--line);vertical-align:top}
th{font-weight:600;color:var(--muted);border-top:0;white-space:nowrap}td.num{text-align:right;font-variant-numeric:tabular-nums}
.muted{color:var(--muted)}.nowrap{white-space:nowrap}.nowrap code{word-break:normal}code{font:12px ui-monospace,monospace;word-break:break-all}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;white-space:nowrap}
.ok{color:var(--ok);background:var(--okbg)}.warn{color:var(--warn);background:var(--warnbg)}.bad{color:var(--bad);background:var(--badbg)}.none{color:var(--none);background:var(--nonebg)}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:10px}
.card{border:1px solid var(--line);border-radius:6px;padding:8px 10px}.card .label{color:var(--muted);font-size:12px}.card .value{font-size:18px;font-weight:600}
.notice{padding:10px 14px;border-radius:6px;margin:14px 0}.error-text{color:var(--bad)}
form.inline{display:inline}button{font:inherit;padding:4px 12px;border-radius:6px;border:1px solid var(--line);background:var(--bg);color:var(--fg);cursor:pointer}
button.danger{border-color:var(--bad);color:var(--bad)}button+a{margin-left:10px}
.login{max-width:360px;margin:60px auto}.login input{width:100%;padding:8px;margin:6px 0 12px;font:inherit;border:1px solid var(--line);border-radius:6px;background:var(--bg);color:var(--fg)}
`;

// Confirms action forms (without JavaScript the server shows a confirmation page) and refreshes
// the content in place. A redirect (expired session) or an error reloads the whole page.
const PAGE_SCRIPT = `
document.addEventListener('submit', function (event) {
  var form = event.target;
  var question = form.getAttribute('data-confirm');
  if (!question) return;
  if (!window.confirm(question)) { event.preventDefault(); return; }
  var field = form.querySelector('input[name="confirm"]');
  if (field) field.value = 'yes';
});
setInterval(function () {
  if (document.hidden || (document.activeElement && document.activeElement.form)) return;
  fetch(window.location.pathname, { credentials: 'same-origin', headers: { 'x-edge-refresh': '1' } })
    .then(function (response) {
      if (response.redirected || response.status !== 200) { window.location.reload(); return; }
      return response.text().then(function (text) {
        var next = new DOMParser().parseFromString(text, 'text/html').getElementById('content');
        if (next) document.getElementById('content').innerHTML = next.innerHTML;
      });
    })
    .catch(function () {});
}, ${REFRESH_INTERVAL_MS});
`;
