import { createHmac } from 'node:crypto';

/** Unix time in seconds at which the client signed the request. */
export const TIMESTAMP_HEADER = 'x-edge-timestamp';
/** `sha256=` and the hex HMAC-SHA256 of the signed payload. */
export const SIGNATURE_HEADER = 'x-edge-signature';
export const SIGNATURE_PREFIX = 'sha256=';

/**
 * Returns the text a request signs after its timestamp: the exact body for requests with one,
 * else the method and request target (`GET /_edge/deploys?service=web`), so a signature made
 * for one read cannot be used on another path.
 */
export function signedContent(method: string, target: string, body: string): string {
  return method === 'GET' || method === 'HEAD' ? `${method} ${target}` : body;
}

/** Returns the signature header value: HMAC-SHA256 with `secret` over `${timestamp}.${content}`. */
export function sign(secret: string, timestamp: string, content: string): string {
  const mac = createHmac('sha256', secret).update(`${timestamp}.${content}`).digest('hex');
  return `${SIGNATURE_PREFIX}${mac}`;
}
