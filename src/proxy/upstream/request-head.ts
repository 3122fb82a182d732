/** Methods whose requests carry a body by definition; undici sends them `content-length: 0`. */
const PAYLOAD_METHODS = new Set(['POST', 'PUT', 'PATCH']);

/**
 * Builds the head of a bodyless request as one string, written to the socket as Latin-1 so each
 * character becomes the byte Node's parser read. `headers` is the flat list from
 * `upstreamRequestHeaders`, whose names and values Node's request parser already validated, and
 * `path` comes from the parsed request target, so neither can contain CR or LF.
 */

import { equalsLower } from '../ascii.ts';
export function requestHead(method: string, path: string, headers: readonly string[]): string {
  let head = `${method} ${path} HTTP/1.1\r\n`;
  let hasLength = false;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    if (name.length === 14 && equalsLower(name, 'content-length')) hasLength = true;
    head += `${name}: ${headers[i + 1]!}\r\n`;
  }
  // Some servers reply 411 to a POST without a length, so an empty body gets an explicit one.
  if (!hasLength && PAYLOAD_METHODS.has(method)) head += 'content-length: 0\r\n';
  return head + '\r\n';
}
