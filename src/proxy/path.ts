/** Prefix of the edge's own API, compared case-insensitively on the normalised path. */
const EDGE_SEGMENT = '/_edge';

/** Characters kept as they are when a decoded path is encoded again (RFC 3986 pchar plus `/`). */
const PATH_SAFE = /[^A-Za-z0-9\-._~!$&'()*+,;=:@/]/g;

/** The path and query of a request target in origin form, both raw. */
export interface RequestTarget {
  /** Raw path, starting with `/`. */
  path: string;
  /** Raw query including its `?`, or an empty string. */
  query: string;
  /** Host from an absolute-form target (`GET http://host/x`), which takes precedence over Host. */
  authority: string | undefined;
}

/**
 * Splits `req.url` into path and query without decoding anything. Accepts origin form and
 * absolute form (RFC 9112 section 3.2.2); returns undefined for anything else, such as `*`.
 */
export function parseRequestTarget(url: string): RequestTarget | undefined {
  let authority: string | undefined;
  let pathAndQuery = url;

  if (url.charCodeAt(0) !== 47 /* / */) {
    const match = /^https?:\/\/([^/?#]+)/i.exec(url);
    if (match === null) return undefined;
    authority = match[1]!;
    pathAndQuery = url.slice(match[0].length);
    if (pathAndQuery.charCodeAt(0) !== 47) pathAndQuery = `/${pathAndQuery}`;
  }

  const mark = pathAndQuery.indexOf('?');
  if (mark === -1) return { path: pathAndQuery, query: '', authority };
  return { path: pathAndQuery.slice(0, mark), query: pathAndQuery.slice(mark), authority };
}

/**
 * Returns the path used for routing decisions: percent-decoded once, `\` read as `/`, duplicate
 * slashes collapsed and dot segments resolved. Returns undefined when a `%` is not followed by
 * two hex digits, or for `%00`. Decoding is byte-wise (Latin-1), so any other byte sequence
 * decodes.
 */
export function normalisePath(path: string): string | undefined {
  if (isPlainPath(path)) return path;

  const decoded = decodePath(path);
  if (decoded === undefined) return undefined;

  const segments: string[] = [];
  for (const segment of decoded.replaceAll('\\', '/').split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') segments.pop();
    else segments.push(segment);
  }

  const trailing = decoded.endsWith('/') && segments.length > 0 ? '/' : '';
  return `/${segments.join('/')}${trailing}`;
}

/**
 * Percent-decodes a path once, byte-wise (Latin-1). Returns undefined when a `%` is not followed
 * by two hex digits, or for `%00`: a NUL byte ends a string in C, so an upstream written in C
 * could read a shorter path than the one the edge routed. nginx rejects it with 400 too.
 */
export function decodePath(path: string): string | undefined {
  if (!path.includes('%')) return path;
  if (/%(?![0-9a-fA-F]{2})|%00/.test(path)) return undefined;
  return path.replace(/%([0-9a-fA-F]{2})/g, (_, hex: string) =>
    String.fromCharCode(parseInt(hex, 16)),
  );
}

/** True when normalising would change nothing, checked without allocating. */
function isPlainPath(path: string): boolean {
  for (let i = 0; i < path.length; i++) {
    const code = path.charCodeAt(i);
    if (code === 37 /* % */ || code === 92 /* \ */) return false;
    if (code === 47 /* / */) {
      const next = path.charCodeAt(i + 1);
      if (next === 47 || next === 46 /* . */) return false;
    }
  }
  return path.length > 0;
}

/**
 * Returns the sub-path of an `/_edge` request (`/`, `/status`), or undefined when the normalised
 * path is not below `/_edge`. Case-insensitive, so `/_EDGE/` cannot slip past to an upstream.
 */
export function edgeSubPath(normalised: string): string | undefined {
  if (normalised.length < EDGE_SEGMENT.length || normalised.charCodeAt(1) !== 95 /* _ */) {
    return undefined;
  }
  if (normalised.slice(0, EDGE_SEGMENT.length).toLowerCase() !== EDGE_SEGMENT) return undefined;
  if (normalised.length === EDGE_SEGMENT.length) return '/';
  if (normalised.charCodeAt(EDGE_SEGMENT.length) !== 47) return undefined;
  return normalised.slice(EDGE_SEGMENT.length);
}

/** True when `path` is `prefix` or below it on a segment boundary. `prefix` has no trailing `/`. */
export function matchesPrefix(path: string, prefix: string): boolean {
  if (prefix === '') return true;
  if (!path.startsWith(prefix)) return false;
  return path.length === prefix.length || path.charCodeAt(prefix.length) === 47;
}

/** Percent-encodes a decoded (Latin-1) path so it can be sent on the wire again. */
export function encodePath(decoded: string): string {
  return decoded.replace(PATH_SAFE, (char) => {
    const code = char.charCodeAt(0);
    return `%${code < 16 ? '0' : ''}${code.toString(16).toUpperCase()}`;
  });
}
