import type { EdgeContext } from '../context.ts';
import type { EdgeApi, EdgeRequest } from '../edge-api.ts';
import { EdgeError, errorMessage } from '../errors.ts';
import type { Logger } from '../log.ts';
import { renewAction, rollbackAction, runAction, type AdminAction } from './actions.ts';
import type { AdminAuth } from './auth.ts';
import { renderDashboard } from './dashboard.ts';
import { AdminGate, errorBody, LOGIN_PATH, requireSameOrigin } from './gate.ts';
import { actionForm } from './forms.ts';
import { EdgeSampler } from './edge-stats.ts';
import { renderPage } from './html.ts';
import {
  createNonce,
  readForm,
  redirect,
  sendHtml,
  sendJson,
  sendText,
  setSecurityHeaders,
} from './http.ts';
import type { EdgeMetrics } from './metrics.ts';
import {
  renderConfirmPage,
  renderDisabledPage,
  renderLoginPage,
  renderMessagePage,
} from './pages.ts';
import { redactSecrets } from './redact.ts';
import { buildStatusReport } from './status-report.ts';

const PAGE_PATH = '/_edge/';

export interface AdminEndpointsOptions {
  /** Secret values removed from everything the endpoints send. */
  secrets: string[];
  now: () => number;
  logger: Logger;
}

/** The admin endpoints below `/_edge/`; every one but `/health` requires a login. */
export class AdminEndpoints {
  private readonly context: EdgeContext;
  private readonly auth: AdminAuth;
  private readonly secrets: string[];
  private readonly sampler: EdgeSampler;
  private metrics: Promise<EdgeMetrics> | undefined;
  private readonly now: () => number;
  private readonly log: Logger;
  private readonly gate: AdminGate;

  constructor(context: EdgeContext, auth: AdminAuth, options: AdminEndpointsOptions) {
    this.context = context;
    this.auth = auth;
    this.secrets = options.secrets;
    this.now = options.now;
    this.log = options.logger;
    this.gate = new AdminGate(auth, options.logger);
    this.sampler = new EdgeSampler(() => context.routeStats, context.startedAt, options.now);
  }

  register(api: EdgeApi): void {
    api.add('GET', '/health', (r) => sendText(r.res, 200, 'ok\n'));

    const routes: [string, string, (request: EdgeRequest) => Promise<void>][] = [
      ['GET', '/', (r) => this.showPage(r)],
      ['GET', '/status', (r) => this.showStatus(r)],
      ['GET', '/metrics', (r) => this.showMetrics(r)],
      ['GET', '/login', (r) => this.showLogin(r)],
      ['POST', '/login', (r) => this.login(r)],
      ['POST', '/logout', (r) => this.logout(r)],
      ['POST', '/actions/rollback', (r) => this.act(r, rollbackAction(this.context))],
      ['POST', '/actions/renew', (r) => this.act(r, renewAction(this.context))],
    ];
    for (const [method, path, handler] of routes) api.add(method, path, this.guard(handler));
  }

  /** Wraps a handler: a closed admin responds 503 with no data, and errors get a page or JSON. */
  private guard(handler: (request: EdgeRequest) => Promise<void>) {
    return async (request: EdgeRequest): Promise<void> => {
      try {
        if (!this.auth.enabled) return this.rejectDisabled(request);
        await handler(request);
      } catch (error) {
        this.sendError(request, error);
      }
    };
  }

  private async showPage(request: EdgeRequest): Promise<void> {
    const session = this.auth.sessionOf(request.req);
    if (session === undefined) return redirect(request.res, LOGIN_PATH);

    const report = await buildStatusReport(this.statusSources());
    const flash = session.flash;
    session.flash = undefined;
    const nonce = createNonce();
    const logout = actionForm('/_edge/logout', {}, 'Log out', '', session.csrfToken, 'plain');
    const body = renderDashboard(report, { csrfToken: session.csrfToken, now: this.now(), flash });
    sendHtml(
      request.res,
      200,
      renderPage({ title: 'Status', nonce, body, headerActions: logout, script: true }),
      nonce,
    );
  }

  private async showStatus(request: EdgeRequest): Promise<void> {
    if (!(await this.gate.authenticateData(request))) return;

    sendJson(request.res, 200, await buildStatusReport(this.statusSources()));
  }

  private async showMetrics(request: EdgeRequest): Promise<void> {
    if (!(await this.gate.authenticateData(request))) return;

    const metrics = await this.loadMetrics();
    const text = await metrics.scrape();
    setSecurityHeaders(request.res);
    request.res.writeHead(200, {
      'content-type': metrics.contentType,
      'content-length': Buffer.byteLength(text),
    });
    request.res.end(text);
  }

  /**
   * Creates the metrics registry on the first scrape, because prom-client costs memory and its
   * default metrics sample the event loop every 10 ms. So the default metrics that observe events,
   * such as GC durations, count from the first scrape on.
   */
  private loadMetrics(): Promise<EdgeMetrics> {
    this.metrics ??= import('./metrics.ts').then(
      ({ EdgeMetrics }) => new EdgeMetrics(this.context, this.secrets),
    );
    return this.metrics;
  }

  private async showLogin(request: EdgeRequest): Promise<void> {
    if (this.auth.sessionOf(request.req) !== undefined) return redirect(request.res, PAGE_PATH);

    const nonce = createNonce();
    sendHtml(request.res, 200, renderLoginPage(nonce), nonce);
  }

  private async login(request: EdgeRequest): Promise<void> {
    requireSameOrigin(request);
    const form = await readForm(request.req);
    const result = await this.auth.login(request.clientAddress, form.get('password') ?? '');
    if (result.ok) {
      request.res.setHeader('set-cookie', this.auth.sessionCookie(result.session));
      return redirect(request.res, PAGE_PATH);
    }

    const nonce = createNonce();
    if (result.reason === 'invalid') {
      return sendHtml(request.res, 401, renderLoginPage(nonce, 'Wrong password.'), nonce);
    }
    const retryAfterS = Math.ceil(result.retryAfterMs / 1000);
    request.res.setHeader('retry-after', String(retryAfterS));
    const message = `Too many failed logins from your address. Try again in ${Math.ceil(retryAfterS / 60)} min.`;
    sendHtml(request.res, 429, renderLoginPage(nonce, message), nonce);
  }

  private async logout(request: EdgeRequest): Promise<void> {
    const form = await this.gate.readSessionForm(request);
    if (form === undefined) return;

    this.auth.logout(form.session);
    request.res.setHeader('set-cookie', this.auth.clearedCookie());
    redirect(request.res, LOGIN_PATH);
  }

  private async act(request: EdgeRequest, action: AdminAction): Promise<void> {
    const form = await this.gate.readSessionForm(request);
    if (form === undefined) return;

    const { session, fields } = form;
    const values = action.validate(fields);
    if (fields.get('confirm') !== 'yes') {
      const nonce = createNonce();
      const page = renderConfirmPage(
        nonce,
        action.path,
        action.question(fields),
        values,
        session.csrfToken,
      );
      return sendHtml(request.res, 200, page, nonce);
    }

    this.log.info(
      { clientAddress: request.clientAddress, action: request.path, ...values },
      'admin action requested',
    );
    const outcome = await runAction(this.context, action, values);
    session.flash = { kind: outcome.kind, text: redactSecrets(outcome.text, this.secrets) };
    redirect(request.res, PAGE_PATH);
  }

  private rejectDisabled(request: EdgeRequest): void {
    const hashEnv = this.context.config.admin.passwordHashEnv;
    if (wantsHtml(request)) {
      const nonce = createNonce();
      return sendHtml(request.res, 503, renderDisabledPage(nonce, hashEnv), nonce);
    }
    sendJson(
      request.res,
      503,
      errorBody('EDGE_ADMIN_DISABLED', `admin disabled: no valid password hash in ${hashEnv}`),
    );
  }

  private sendError(request: EdgeRequest, error: unknown): void {
    const status = error instanceof EdgeError ? error.status : 500;
    const code = error instanceof EdgeError ? error.code : 'EDGE_ADMIN_INTERNAL';
    const message = redactSecrets(
      status >= 500 ? 'internal error, see the edge log' : errorMessage(error),
      this.secrets,
    );
    if (status >= 500)
      this.log.error(
        { err: error, reqId: request.reqId, path: request.path },
        'admin request failed',
      );
    if (request.res.headersSent) return void request.res.destroy();

    if (wantsHtml(request)) {
      const nonce = createNonce();
      return sendHtml(
        request.res,
        status,
        renderMessagePage(nonce, 'Request failed', message),
        nonce,
      );
    }
    sendJson(request.res, status, errorBody(code, message));
  }

  private statusSources() {
    return { context: this.context, sampler: this.sampler, secrets: this.secrets, now: this.now };
  }
}

function wantsHtml(request: EdgeRequest): boolean {
  return request.path !== '/status' && request.path !== '/metrics';
}
