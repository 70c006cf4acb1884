/**
 * The two forms of a request path the middleware uses: the key form, which keeps every distinction a
 * handler can see, and the canonical form, which folds every spelling of a path together so that route
 * rules and invalidation cannot be sidestepped by writing the path differently.
 */

const PERCENT_ENCODED = /%[0-9A-Fa-f]{2}/g;
const PERCENT_ENCODED_RUN = /(?:%[0-9A-Fa-f]{2})+/g;
const UNRESERVED = /^[A-Za-z0-9\-._~]$/;

/**
 * The path with RFC 3986 6.2.2 normalization only (percent-encoded unreserved characters decoded, the
 * other escapes upper-cased), so equivalent URIs share a key while `/x`, `/x/` and `//x`, which a handler
 * may answer differently, do not: folding them would let one spelling's response answer another.
 */
export function keyPath(path: string): string {
  if (!path.includes('%')) return path;
  return path.replace(PERCENT_ENCODED, (escape) => {
    const char = String.fromCharCode(Number.parseInt(escape.slice(1), 16));
    return UNRESERVED.test(char) ? char : escape.toUpperCase();
  });
}

/**
 * Every spelling of a path as one form: percent-decoded (once; a malformed escape is kept), dot segments
 * resolved, empty segments dropped (no duplicate or trailing slash). Case is kept: callers that ignore it
 * lower-case the result. `//X/./y/` and `/X/y` give `/X/y`.
 */
export function canonicalPath(path: string): string {
  const decoded = path.includes('%') ? path.replace(PERCENT_ENCODED_RUN, decodeRun) : path;
  if (decoded.startsWith('/') && !decoded.includes('//') && !decoded.includes('/.') && (decoded.length === 1 || !decoded.endsWith('/'))) return decoded;
  const segments: string[] = [];
  for (const segment of decoded.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') segments.pop();
    else segments.push(segment);
  }
  return `/${segments.join('/')}`;
}

function decodeRun(run: string): string {
  try {
    return decodeURIComponent(run);
  } catch {
    return run; // not UTF-8: the bytes stay escaped, as a handler decoding them would fail too
  }
}
