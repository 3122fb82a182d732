import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { EdgeError } from '../errors.ts';

/** Largest form body the admin endpoints read. */
export const MAX_FORM_BYTES = 8 * 1024;

/** Returns a fresh nonce for the inline style and script of one page (Content-Security-Policy). */
export function createNonce(): string {
  return randomBytes(16).toString('base64');
}

/** Sets the headers every admin response carries: no caching, no framing, no sniffing. */
export function setSecurityHeaders(res: ServerResponse): void {
  res.setHeader('cache-control', 'no-store');
  res.setHeader('x-content-type-options', 'nosniff');
  res.setHeader('x-frame-options', 'DENY');
  // `no-referrer` would make Chromium send `Origin: null` on the admin's own form posts.
  res.setHeader('referrer-policy', 'same-origin');
}

export function sendHtml(res: ServerResponse, status: number, html: string, nonce: string): void {
  setSecurityHeaders(res);
  res.setHeader(
    'content-security-policy',
    [
      "default-src 'none'",
      `style-src 'nonce-${nonce}'`,
      `script-src 'nonce-${nonce}'`,
      "connect-src 'self'",
      "img-src 'self' data:",
      "form-action 'self'",
      "frame-ancestors 'none'",
      "base-uri 'none'",
    ].join('; '),
  );
  sendBody(res, status, 'text/html; charset=utf-8', html);
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  setSecurityHeaders(res);
  sendBody(res, status, 'application/json; charset=utf-8', `${JSON.stringify(body, null, 2)}\n`);
}

export function sendText(
  res: ServerResponse,
  status: number,
  text: string,
  type = 'text/plain',
): void {
  setSecurityHeaders(res);
  sendBody(res, status, `${type}; charset=utf-8`, text);
}

/** Sends 303 See Other, so a POST form is followed by a GET of `location`. */
export function redirect(res: ServerResponse, location: string): void {
  setSecurityHeaders(res);
  res.setHeader('location', location);
  sendBody(res, 303, 'text/plain; charset=utf-8', `See ${location}\n`);
}

/**
 * Reads an `application/x-www-form-urlencoded` body of at most MAX_FORM_BYTES. Raises EdgeError
 * with status 415 for another type and 413 for a larger body.
 */
export async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') {
    throw new EdgeError('EDGE_ADMIN_FORM_TYPE', `unsupported form type ${type || '(none)'}`, {
      status: 415,
    });
  }

  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_FORM_BYTES) {
      throw new EdgeError('EDGE_ADMIN_FORM_TOO_LARGE', `form larger than ${MAX_FORM_BYTES} bytes`, {
        status: 413,
      });
    }
    chunks.push(chunk as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

/**
 * Returns false when a browser reports that the request comes from another origin: by Sec-Fetch-Site
 * when it sends one, else by Origin. SameSite=Strict and the CSRF token already stop cross-site
 * forms, so this check is a second, independent layer.
 */
export function isSameOrigin(req: IncomingMessage): boolean {
  const fetchSite = req.headers['sec-fetch-site'];
  if (typeof fetchSite === 'string') return fetchSite === 'same-origin';

  const origin = req.headers.origin;
  if (origin === undefined) return true;
  // Sandboxed frames and data: URLs send `null`; the admin pages never do, see Referrer-Policy.
  if (origin === 'null') return false;

  try {
    return new URL(origin).host.toLowerCase() === (req.headers.host ?? '').toLowerCase();
  } catch {
    return false;
  }
}

/** Returns the value of cookie `name` from the Cookie header, or undefined. */
export function readCookie(req: IncomingMessage, name: string): string | undefined {
  const header = req.headers.cookie;
  if (header === undefined) return undefined;

  for (const part of header.split(';')) {
    const index = part.indexOf('=');
    if (index > 0 && part.slice(0, index).trim() === name) return part.slice(index + 1).trim();
  }
  return undefined;
}

function sendBody(res: ServerResponse, status: number, type: string, body: string): void {
  res.statusCode = status;
  res.setHeader('content-type', type);
  res.setHeader('content-length', Buffer.byteLength(body));
  res.end(body);
}
