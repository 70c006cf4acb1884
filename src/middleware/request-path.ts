/**
 * The canonical form of a request path, which folds every spelling of a path together so that route rules
 * and invalidation cannot be sidestepped by writing the path differently. Memo keys never use it: a key holds
 * the path exactly as the handler receives it (see `httpMemoKey`), since a handler that does not decode
 * `/%78`, or routes `/X` elsewhere, would otherwise fill the entry every `/x` caller reads.
 */

const PERCENT_ENCODED_RUN = /(?:%[0-9A-Fa-f]{2})+/g;

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
