import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import type serveStaticModule from 'serve-static';
import type { FailureKind } from './errors.ts';
import { decodePath, normalisePath } from './path.ts';

type ServeStatic = typeof serveStaticModule;
type Serve = ReturnType<ServeStatic>;

let serveStatic: ServeStatic | undefined;

/** Loads serve-static at the first static route, so proxy-only edges never carry its several MB. */
function loadServeStatic(): ServeStatic {
  serveStatic ??= createRequire(import.meta.url)('serve-static') as ServeStatic;
  return serveStatic;
}

/** Callback run once the static response is settled: sent, or a failure the caller sends. */
export type StaticDone = (failure: FailureKind | undefined) => void;

/**
 * Serves the files of a static route with serve-static. Files are looked up by the path below
 * the route prefix. With `spa`, an unknown path without a file extension gets index.html, so a
 * single-page app's history-mode URLs load the app.
 */
export class StaticHandler {
  private readonly serve: Serve;
  private readonly spa: boolean;

  constructor(root: string, spa: boolean) {
    this.serve = loadServeStatic()(root, {
      index: ['index.html'],
      dotfiles: 'ignore',
      fallthrough: true,
      redirect: true,
      setHeaders: setCacheHeaders,
    });
    this.spa = spa;
  }

  /**
   * Serves `subPath` (raw, below the route prefix) plus `query`. Paths that decode to a `..`
   * segment, a backslash or a NUL byte are rejected before any file system access.
   */
  handle(
    req: IncomingMessage,
    res: ServerResponse,
    subPath: string,
    query: string,
    done: StaticDone,
  ): void {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      done('methodNotAllowed');
      return;
    }

    const decoded = decodePath(subPath);
    if (decoded === undefined || isUnsafe(decoded)) {
      done('badRequest');
      return;
    }

    const original = req.url;
    const request = req as IncomingMessage & { originalUrl?: string };
    request.originalUrl = original;
    req.url = subPath + query;
    this.serve(req as never, res as never, (error?: unknown) => {
      if (error !== undefined) {
        done(statusOf(error) === 404 ? 'notFound' : 'internal');
      } else if (this.spa && isAppRoute(subPath, decoded)) {
        req.url = '/index.html';
        this.serve(req as never, res as never, () => done('notFound'));
      } else {
        done('notFound');
      }
    });
  }
}

/** True for a decoded path that tries to leave the root or hides a separator. */
function isUnsafe(decoded: string): boolean {
  if (decoded.includes('\0') || decoded.includes('\\')) return true;
  return decoded.split('/').includes('..');
}

/**
 * Checks for a history-mode app route: no file extension in the last segment and no empty or dot
 * segments, so `/users/42` gets index.html but `/app.js` and `//etc/passwd` stay 404.
 */
function isAppRoute(subPath: string, decoded: string): boolean {
  if (normalisePath(subPath) !== decoded) return false;
  const last = decoded.slice(decoded.lastIndexOf('/') + 1);
  return path.extname(last) === '';
}

function statusOf(error: unknown): number {
  const status =
    (error as { status?: unknown; statusCode?: unknown }).statusCode ??
    (error as { status?: unknown }).status;
  return typeof status === 'number' ? status : 500;
}

/** index.html is revalidated on every load so a new frontend build shows at once. */
function setCacheHeaders(res: ServerResponse, file: string): void {
  if (path.basename(file) === 'index.html') res.setHeader('Cache-Control', 'no-cache');
}
