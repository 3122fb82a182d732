import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SiteConfig } from '../config/schema.ts';
import type { EdgeApi } from '../edge-api.ts';
import type { Logger } from '../log.ts';
import { errorMessage } from '../errors.ts';
import { sendFailure } from './errors.ts';

/** A request below `/_edge`, once its site is known. */
export interface EdgeDispatch {
  req: IncomingMessage;
  res: ServerResponse;
  site: SiteConfig;
  clientAddress: string;
  /** Normalised path below `/_edge`. */
  subPath: string;
  /** Raw query including `?`, or empty. */
  query: string;
  secure: boolean;
  reqId: string;
}

/**
 * Runs the edge API handler registered for the request, or answers 404/405. A handler that throws
 * or rejects gets a 500 page if nothing was sent yet; the error is logged here, once.
 */
export function dispatchEdgeApi(api: EdgeApi, logger: Logger, request: EdgeDispatch): void {
  const { req, res } = request;
  const found = api.match(req.method ?? 'GET', request.subPath);
  if ('status' in found) {
    sendFailure(res, found.status === 405 ? 'methodNotAllowed' : 'notFound');
    return;
  }

  const onError = (error: unknown): void => {
    logger.error(
      { reqId: request.reqId, path: request.subPath, err: errorMessage(error) },
      'edge api handler failed',
    );
    if (!res.headersSent) sendFailure(res, 'internal');
    else res.destroy();
  };

  try {
    const result = found.handler({
      req,
      res,
      site: request.site,
      clientAddress: request.clientAddress,
      path: request.subPath,
      query: new URLSearchParams(request.query),
      params: found.params,
      secure: request.secure,
      reqId: request.reqId,
    });
    if (result instanceof Promise) result.catch(onError);
  } catch (error) {
    onError(error);
  }
}
