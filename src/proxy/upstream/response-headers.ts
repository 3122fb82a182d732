import {
  isConnection,
  isDroppedResponseHeader,
  joinTokens,
  withoutConnectionOptions,
} from '../headers.ts';

/**
 * Turns an upstream header list (Latin-1 strings from the raw client) into the list for
 * `res.writeHead`, in place: drops hop-by-hop headers and the upstream's X-Request-Id, then adds
 * the edge's request id and HSTS. The same rules as `clientResponseHeaders`, which takes undici's
 * Buffer list, so both clients give the client the same head.
 */
export function toClientHeaders(
  headers: string[],
  reqId: string,
  hsts: string | undefined,
  status = 200,
): string[] {
  const replaceHsts = hsts !== undefined;
  let keptLength = 0;
  let connection: string | undefined;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    if (isDroppedResponseHeader(name, replaceHsts, status)) {
      if (isConnection(name)) connection = joinTokens(connection, headers[i + 1]!);
      continue;
    }
    headers[keptLength] = name;
    headers[keptLength + 1] = headers[i + 1]!;
    keptLength += 2;
  }
  headers.length = keptLength;
  const filtered =
    connection === undefined ? headers : withoutConnectionOptions(headers, connection);
  filtered.push('x-request-id', reqId);
  if (hsts !== undefined) filtered.push('strict-transport-security', hsts);
  return filtered;
}
