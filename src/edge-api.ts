import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SiteConfig } from './config/schema.ts';

/** `/_edge/` is reserved on every site: it is answered by the edge and never proxied. */
export const EDGE_PREFIX = '/_edge';

/** A request below `/_edge/`, after the proxy matched its site. */
export interface EdgeRequest {
  req: IncomingMessage;
  res: ServerResponse;
  site: SiteConfig;
  /** Address of the TCP peer (never taken from a header). */
  clientAddress: string;
  /** Path below the prefix, already normalised: `/`, `/status`, `/deploy/abc`. */
  path: string;
  query: URLSearchParams;
  /** Values of the `:name` segments of the matched route pattern, in order. */
  params: string[];
  /** True when the client used TLS. */
  secure: boolean;
  reqId: string;
}

export type EdgeRouteHandler = (request: EdgeRequest) => void | Promise<void>;

interface EdgeRoute {
  method: string;
  pattern: RegExp;
  handler: EdgeRouteHandler;
}

/**
 * Routes `/_edge/*` requests to the handlers the admin and deploy modules register. A pattern
 * such as `/deploy/:id` matches one path segment per parameter; parameters are in `params`.
 */
export class EdgeApi {
  private readonly routes: EdgeRoute[] = [];

  add(method: string, path: string, handler: EdgeRouteHandler): void {
    const source = path
      .split('/')
      .map((part) => (part.startsWith(':') ? '([^/]+)' : escapeRegExp(part)))
      .join('/');
    this.routes.push({ method: method.toUpperCase(), pattern: new RegExp(`^${source}$`), handler });
  }

  /** Returns the handler and path parameters for a request, or why none matched. */
  match(
    method: string,
    path: string,
  ): { handler: EdgeRouteHandler; params: string[] } | { status: 404 | 405 } {
    let pathMatched = false;
    for (const route of this.routes) {
      const found = route.pattern.exec(path);
      if (found === null) continue;
      pathMatched = true;
      if (route.method === method || (method === 'HEAD' && route.method === 'GET')) {
        return { handler: route.handler, params: found.slice(1).map(decodeURIComponent) };
      }
    }
    return { status: pathMatched ? 405 : 404 };
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
