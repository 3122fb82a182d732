import { timingSafeEqual } from 'node:crypto';
import type { EdgeRequest } from '../edge-api.ts';
import { EdgeError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { AdminAuth } from './auth.ts';
import { createNonce, isSameOrigin, readForm, sendHtml, sendJson } from './http.ts';
import { renderMessagePage } from './pages.ts';
import type { AdminSession } from './sessions.ts';

export const LOGIN_PATH = '/_edge/login';

/** A POST form of a logged-in session whose CSRF token matched. */
export interface SessionForm {
  session: AdminSession;
  fields: URLSearchParams;
}

/**
 * Request checks shared by the admin endpoints. Each one sends the response itself when the
 * check fails, so callers only continue on success.
 */
export class AdminGate {
  private readonly auth: AdminAuth;
  private readonly log: Logger;

  constructor(auth: AdminAuth, log: Logger) {
    this.auth = auth;
    this.log = log;
  }

  /**
   * Accepts a session cookie or HTTP Basic credentials. Otherwise responds 401 (or 429 while the
   * client is rate-limited) with no data and returns false.
   */
  async authenticateData(request: EdgeRequest): Promise<boolean> {
    if (this.auth.sessionOf(request.req) !== undefined) return true;

    const basic = await this.auth.checkBasic(request.req, request.clientAddress);
    if (basic === 'ok') return true;

    if (typeof basic === 'object') {
      request.res.setHeader('retry-after', String(Math.ceil(basic.retryAfterMs / 1000)));
      const body = errorBody('EDGE_ADMIN_RATE_LIMITED', 'too many failed logins from this address');
      sendJson(request.res, 429, body);
      return false;
    }

    request.res.setHeader('www-authenticate', 'Basic realm="caliente-edge", charset="UTF-8"');
    const message = `authentication required: log in at ${LOGIN_PATH} or send HTTP Basic credentials`;
    sendJson(request.res, 401, errorBody('EDGE_ADMIN_UNAUTHENTICATED', message));
    return false;
  }

  /**
   * Reads the POST form of a logged-in session and checks its origin and CSRF token. Responds
   * 401 and returns undefined without a session. Raises EdgeError 403 on a bad origin or token.
   */
  async readSessionForm(request: EdgeRequest): Promise<SessionForm | undefined> {
    const session = this.auth.sessionOf(request.req);
    if (session === undefined) {
      const nonce = createNonce();
      const page = renderMessagePage(nonce, 'Not logged in', 'Log in and try again.');
      sendHtml(request.res, 401, page, nonce);
      return undefined;
    }

    requireSameOrigin(request);
    const fields = await readForm(request.req);
    if (!tokensMatch(fields.get('csrf') ?? '', session.csrfToken)) {
      const fieldsToLog = { clientAddress: request.clientAddress, path: request.path };
      this.log.warn(fieldsToLog, 'admin form rejected: invalid CSRF token');
      throw new EdgeError(
        'EDGE_ADMIN_CSRF',
        'invalid or missing CSRF token: reload the admin page and try again',
        { status: 403 },
      );
    }
    return { session, fields };
  }
}

/** Raises EdgeError 403 when the browser reports another origin for the form. */
export function requireSameOrigin(request: EdgeRequest): void {
  if (isSameOrigin(request.req)) return;

  throw new EdgeError('EDGE_ADMIN_CROSS_ORIGIN', 'form posted from another origin', {
    status: 403,
  });
}

export function errorBody(
  code: string,
  message: string,
): { error: { code: string; message: string } } {
  return { error: { code, message } };
}

function tokensMatch(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
