import { failurePage, sendFailure, type FailureKind } from '../errors.ts';
import type { Exchange } from '../exchange.ts';

/**
 * Ends an exchange whose upstream failed: the page of `kind` when the response has not started,
 * else a cut connection, because a started response has no other way to signal the failure.
 * `close` sends `Connection: close`, for responses sent before the request body was read. `hsts`
 * is the site's Strict-Transport-Security value, sent with the page as with any response.
 */
export function failExchange(
  exchange: Exchange,
  error: Error,
  kind: FailureKind,
  close: boolean,
  hsts: string | undefined,
): void {
  if (exchange.finished) return;
  const res = exchange.res;
  const fields = {
    reqId: exchange.reqId,
    upstream: exchange.upstream,
    err: error.message,
    code: (error as { code?: string }).code,
  };

  if (res.headersSent) {
    exchange.log.logger.warn(fields, 'upstream failed mid-response');
    res.destroy();
    exchange.finish(res.statusCode, exchange.bytes);
    return;
  }

  exchange.log.logger.warn(fields, 'upstream request failed');
  res.setHeader('x-request-id', exchange.reqId);
  if (hsts !== undefined) res.setHeader('strict-transport-security', hsts);
  const status = sendFailure(res, kind, close);
  exchange.finish(status, failurePage(kind).length);
}
