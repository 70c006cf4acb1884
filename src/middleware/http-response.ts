import { createHash } from 'node:crypto';
import { httpCacheSemantics } from '../on-demand.ts';
import { strictCachingFields } from './cache-control.ts';
import { parseHttpDate } from './http-date.ts';
import { targetedCachingFields } from './targeted-cache-control.ts';
import type { HttpRequestView } from './http-event.ts';

type HeaderValue = string | number | boolean;

/** A Lambda HTTP response: API Gateway v1/v2, Function URL or ALB. */
export interface HttpResponse {
  statusCode: number;
  statusDescription?: string;
  headers?: Record<string, HeaderValue>;
  multiValueHeaders?: Record<string, HeaderValue[]>;
  cookies?: string[];
  body?: string;
  isBase64Encoded?: boolean;
}

/** Whether `value` is a Node or web stream (a streamed response cannot be memoized). */
export function isStream(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.pipe === 'function' || typeof v.getReader === 'function' || '_readableState' in v;
}

/**
 * The handler's result as a structured response, or `undefined` when it cannot be one. HTTP API (v2) and
 * Function URLs accept any value and infer a 200 JSON response from it; that inference is made explicit
 * here so headers can be added. REST (v1) and ALB need a `statusCode`.
 */
export function toHttpResponse(result: unknown, request: HttpRequestView): HttpResponse | undefined {
  if (result === undefined || isStream(result)) return undefined;
  if (typeof result === 'object' && result !== null && typeof (result as HttpResponse).statusCode === 'number') {
    const original = result as HttpResponse;
    if (isStream(original.body)) return undefined;
    // Copy the header bags too: headers are replaced in place, and the handler may reuse its objects.
    const response: HttpResponse = { ...original };
    if (original.headers !== undefined) response.headers = { ...original.headers };
    if (original.multiValueHeaders !== undefined) response.multiValueHeaders = { ...original.multiValueHeaders };
    return response;
  }
  if (request.source === 'api-gateway-v2' || request.source === 'function-url') {
    return { statusCode: 200, headers: { 'content-type': 'application/json' }, body: typeof result === 'string' ? result : JSON.stringify(result) };
  }
  return undefined;
}

/** Response headers with lower-case names; repeated values joined with `, ` (Set-Cookie kept apart). */
export function headersOf(response: HttpResponse): Record<string, string> {
  const result: Record<string, string> = {};
  const add = (name: string, value: HeaderValue) => {
    const lower = name.toLowerCase();
    result[lower] = result[lower] === undefined ? String(value) : `${result[lower]}, ${String(value)}`;
  };
  for (const [name, value] of Object.entries(response.headers ?? {})) add(name, value);
  for (const [name, values] of Object.entries(response.multiValueHeaders ?? {})) {
    for (const value of values ?? []) add(name, value);
  }
  return result;
}

/**
 * Sets a header, replacing any spelling of it. With `multiValueHeaders` (ALB multi-value mode, or a v1
 * handler that uses it) the header goes there, since the integration may ignore `headers` then.
 */
export function setHeader(response: HttpResponse, name: string, value: string): void {
  const lower = name.toLowerCase();
  for (const bag of [response.headers, response.multiValueHeaders]) {
    for (const existing of Object.keys(bag ?? {})) if (existing.toLowerCase() === lower) delete bag![existing];
  }
  if (response.multiValueHeaders !== undefined) response.multiValueHeaders[name] = [value];
  else response.headers = { ...response.headers, [name]: value };
}

/** Whether the response sets a cookie (a header, a multi-value header or the v2 `cookies` list). */
export function setsCookie(response: HttpResponse): boolean {
  return headersOf(response)['set-cookie'] !== undefined || (Array.isArray(response.cookies) && response.cookies.length > 0);
}

/**
 * Fields a cache never stores or replays (RFC 9111 3.1): the hop-by-hop fields of RFC 9110 7.6.1, the
 * proxy authentication fields, which concern the connection to a proxy, not the resource.
 */
const NEVER_STORED_HEADERS = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'transfer-encoding',
  'upgrade',
  'proxy-authenticate',
  'proxy-authentication-info',
  'proxy-authorization',
]);

/**
 * Which of `response`'s fields a cache never stores, nor takes from it to update a stored response (RFC 9111
 * 3.1, 3.2): the fields above and those named in its `Connection`. Takes lower-case names.
 */
export function unstorableFields(response: HttpResponse): (lowerName: string) => boolean {
  const listed = (headersOf(response).connection ?? '').split(',').map((name) => name.trim().toLowerCase());
  return (name) => NEVER_STORED_HEADERS.has(name) || listed.includes(name);
}

/** A deep copy of `response` fit for storing: without the fields a cache never stores. */
export function storableCopy(response: HttpResponse): HttpResponse {
  const copy = structuredClone(response);
  const drop = unstorableFields(response);
  for (const bag of [copy.headers, copy.multiValueHeaders]) {
    for (const name of Object.keys(bag ?? {})) if (drop(name.toLowerCase())) delete bag![name];
  }
  return copy;
}

/** `response` without the header fields `names` (lower case): a copy, or `response` itself when it has none of them. */
export function withoutHeaders(response: HttpResponse, names: readonly string[]): HttpResponse {
  const present = (bag: Record<string, unknown> | undefined) => bag !== undefined && Object.keys(bag).some((name) => names.includes(name.toLowerCase()));
  if (!present(response.headers) && !present(response.multiValueHeaders)) return response;
  const copy: HttpResponse = { ...response };
  for (const key of ['headers', 'multiValueHeaders'] as const) {
    const bag = response[key];
    if (bag !== undefined) copy[key] = Object.fromEntries(Object.entries(bag).filter(([name]) => !names.includes(name.toLowerCase()))) as never;
  }
  return copy;
}

/** `response` as the answer to a HEAD: the same header fields, no content (RFC 9110 9.3.2). */
export function withoutContent(response: HttpResponse): HttpResponse {
  return { ...response, body: '', isBase64Encoded: false };
}

/**
 * Whether the response may get a generated strong ETag: a 2xx other than 206 (a partial body is not the
 * representation), and only when it carries the content, so a HEAD answered without a body is never
 * given the ETag of an empty representation, which would differ from its GET's.
 */
export function takesGeneratedEtag(method: string, response: HttpResponse): boolean {
  if (response.statusCode < 200 || response.statusCode >= 300 || response.statusCode === 206) return false;
  return method !== 'HEAD' || (response.body ?? '') !== '';
}

/** A strong ETag from the body: the response's representation as bytes on the wire. */
export function etagFor(response: HttpResponse): string {
  const hash = createHash('sha256').update(response.body ?? '').update(response.isBase64Encoded ? ':b64' : ':text').digest('base64url');
  return `"${hash.slice(0, 32)}"`;
}

/** RFC 9110 `If-None-Match` (weak comparison): `*` or any listed tag equal to `etag`. */
export function ifNoneMatchMatches(ifNoneMatch: string | undefined, etag: string): boolean {
  if (ifNoneMatch === undefined) return false;
  const wanted = opaqueTag(etag);
  return ifNoneMatch.split(',').some((tag) => tag.trim() === '*' || opaqueTag(tag) === wanted);
}

/** An entity tag without its weakness: what the weak comparison compares (RFC 9110 8.8.3.2). */
export function opaqueTag(tag: string): string {
  return tag.trim().replace(/^W\//, '');
}

/**
 * Whether a 200 `response` answers the client's conditional GET or HEAD with a 304 (RFC 9110 13.1.1,
 * 13.1.3, 13.2.2): `If-None-Match` when present (weak comparison), otherwise `If-Modified-Since` against
 * `Last-Modified`, or `Date` without one (RFC 9111 4.3.2). Dates are HTTP-dates only.
 */
export function answersNotModified(requestHeaders: Readonly<Record<string, string>>, response: HttpResponse): boolean {
  if (response.statusCode !== 200) return false;
  const ifNoneMatch = requestHeaders['if-none-match'];
  const ifModifiedSince = requestHeaders['if-modified-since'];
  if (ifNoneMatch === undefined && ifModifiedSince === undefined) return false;
  const headers = headersOf(response);
  if (ifNoneMatch !== undefined) return headers.etag !== undefined && ifNoneMatchMatches(ifNoneMatch, headers.etag);
  const since = parseHttpDate(ifModifiedSince!);
  const lastModified = headers['last-modified'] ?? headers.date;
  const modified = lastModified === undefined ? undefined : parseHttpDate(lastModified);
  return since !== undefined && modified !== undefined && modified <= since;
}

/** The headers a 304 keeps from the 200 it stands for (RFC 9110 15.4.5), plus the cache's own. */
const NOT_MODIFIED_HEADERS = new Set(['cache-control', 'content-location', 'date', 'etag', 'expires', 'vary', 'age', 'x-cache', 'cache-status']);

/** The `304 Not Modified` for `response`: no body, only the validator and caching headers. */
export function notModified(response: HttpResponse): HttpResponse {
  const keep = <T>(bag: Record<string, T> | undefined) =>
    bag === undefined ? undefined : Object.fromEntries(Object.entries(bag).filter(([name]) => NOT_MODIFIED_HEADERS.has(name.toLowerCase())));
  const result: HttpResponse = { statusCode: 304, body: '', isBase64Encoded: false };
  const headers = keep(response.headers);
  const multiValueHeaders = keep(response.multiValueHeaders);
  if (headers !== undefined) result.headers = headers;
  if (multiValueHeaders !== undefined) result.multiValueHeaders = multiValueHeaders;
  if (response.statusDescription !== undefined) result.statusDescription = '304 Not Modified';
  return result;
}

/** The rules of one memoized route. */
export interface StoragePolicy {
  /** Longest TTL, in seconds; a shorter `s-maxage`/`max-age`/`Expires` from the response wins. */
  readonly ttlSeconds: number;
  /** Status codes that may be stored. */
  readonly statusCodes: ReadonlySet<number>;
  /** Request headers (lower case) that are part of the key; the response may `Vary` only on these. */
  readonly vary: ReadonlySet<string>;
  /** HTTP-proxy mode: store only responses with explicit freshness (`s-maxage`, `max-age` or `Expires`). */
  readonly requireFreshness: boolean;
  /** The RFC 9213 target list: targeted fields (lower case) whose directives replace Cache-Control here, most specific first. */
  readonly targetedFields: readonly string[];
  /** Stale responses with the handler's own validators are kept, to be revalidated through the handler. */
  readonly revalidate: boolean;
}

/** What the request and the handler bring to the decision. */
export interface StorageContext {
  /**
   * The route is shared and the request carried credentials (`Authorization`, a credential header, an
   * authorizer identity): RFC 9111 3.5 then needs `public`, `s-maxage` or `must-revalidate` to store.
   */
  readonly sharedWithCredentials: boolean;
  /** Whether the handler gave the response a validator of its own (`ETag` or `Last-Modified`). */
  readonly validated: boolean;
}

/** Whether and for how long a response may be stored, with the reason when it may not. */
export type StorageDecision =
  | {
      readonly store: true;
      /** Freshness, in seconds: `0` for a response stored stale, only to be revalidated. */
      readonly ttlSeconds: number;
      /** `must-revalidate` or `proxy-revalidate`: never served stale. */
      readonly mustRevalidate: boolean;
      /** `no-cache`: validated before each use. */
      readonly noCache: boolean;
    }
  | { readonly store: false; readonly reason: string };

/**
 * Decides whether `response` may be stored in the shared (DynamoDB) cache, by RFC 9111 in shared-cache
 * mode (`http-cache-semantics`, fed with strictly parsed, case-normalized fields, the RFC 9213 targeted
 * field in place of Cache-Control when there is one) plus stricter rules: only the configured statuses,
 * never `Set-Cookie`, never a `Vary` on a header outside the key, and `no-cache` or an already stale
 * response only where it can be revalidated (a revalidating route, and a validator from the handler).
 *
 * The request is evaluated without its `Authorization` header: a request that carries one is keyed by
 * its identity, or its route was declared shared and RFC 9111 3.5 applies (`context.sharedWithCredentials`).
 */
export function decideStorage(request: HttpRequestView, response: HttpResponse, policy: StoragePolicy, context: StorageContext): StorageDecision {
  if (!policy.statusCodes.has(response.statusCode)) return { store: false, reason: `status ${response.statusCode}` };
  if (setsCookie(response)) return { store: false, reason: 'Set-Cookie' };
  const now = Date.now();
  const responseHeaders = strictCachingFields(targetedCachingFields(headersOf(response), policy.targetedFields), now);
  for (const name of (responseHeaders.vary ?? '').split(',').map((h) => h.trim().toLowerCase()).filter(Boolean)) {
    if (name === '*') return { store: false, reason: 'Vary: *' };
    if (!policy.vary.has(name)) return { store: false, reason: `Vary on ${name}, which is not part of the key` };
  }
  const { authorization: _authorization, ...requestHeaders } = request.headers;
  const cachePolicy = new (httpCacheSemantics())(
    { method: request.method, url: request.path, headers: strictCachingFields(requestHeaders, now) },
    { status: response.statusCode, headers: responseHeaders },
    { shared: true, cacheHeuristic: 0, immutableMinTimeToLive: 0 },
  );
  if (!cachePolicy.storable()) return { store: false, reason: 'not storable by a shared cache (no-store, private, or request no-store)' };
  // The library's reading of the canonical Cache-Control, plus a Pragma: no-cache when there is none.
  const directives = cachePolicy.toObject().rescc as Record<string, unknown>;
  const has = (name: string) => directives[name] !== undefined;
  if (context.sharedWithCredentials && !has('public') && !has('s-maxage') && !has('must-revalidate')) {
    return { store: false, reason: 'a response to a request with credentials, without public, s-maxage or must-revalidate (RFC 9111 3.5)' };
  }
  const revalidatable = policy.revalidate && context.validated;
  const noCache = has('no-cache');
  if (noCache && !revalidatable) return { store: false, reason: 'no-cache, and no revalidation (a revalidating route and a validator from the handler)' };
  const explicit = has('s-maxage') || has('max-age') || responseHeaders.expires !== undefined;
  if (!explicit && policy.requireFreshness) return { store: false, reason: 'no explicit freshness (s-maxage, max-age or Expires) in HTTP-proxy mode' };
  const freshness = explicit ? Math.min(policy.ttlSeconds, Math.floor(cachePolicy.maxAge() - cachePolicy.age())) : policy.ttlSeconds;
  if (freshness <= 0 && !revalidatable) return { store: false, reason: 'already stale (max-age=0, past or invalid Expires)' };
  return { store: true, ttlSeconds: noCache ? 0 : Math.max(0, freshness), mustRevalidate: has('must-revalidate') || has('proxy-revalidate'), noCache };
}
