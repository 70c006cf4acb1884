/** Which Lambda integration an HTTP event came from. */
export type HttpEventSource = 'api-gateway-v1' | 'api-gateway-v2' | 'function-url' | 'alb';

/** The parts of an HTTP event that response memoization needs, the same for every source. */
export interface HttpRequestView {
  readonly source: HttpEventSource;
  /** Upper-case method. */
  readonly method: string;
  /** The request path as the handler sees it (REST and ALB `path`, HTTP API and Function URL `rawPath`). */
  readonly path: string;
  /**
   * The domain the request was sent to, lower case: `requestContext.domainName` for API Gateway and
   * Function URLs, the `Host` header for ALB (or when the event has no domain name).
   */
  readonly domain: string | undefined;
  /** The API Gateway stage (`$default` for Function URLs); `undefined` for ALB. */
  readonly stage: string | undefined;
  /** The route template API Gateway matched (`/users/{id}`), without the method; `undefined` for `$default`, Function URLs and ALB. */
  readonly routeTemplate: string | undefined;
  /** The path parameters API Gateway extracted for `routeTemplate`. */
  readonly pathParameters: Readonly<Record<string, unknown>> | undefined;
  /**
   * Query parameters as the handler receives them, sorted by name only (a stable sort): `?b=2&a=1` and
   * `?a=1&b=2` are one request, `?a=1&a=2` and `?a=2&a=1` are two, as the handler sees the values in that
   * order. Names and values are never decoded where the handler gets them undecoded (HTTP API and Function URL
   * `rawQueryString`, ALB's parameters): `?q=%78` and `?q=x` are two requests there, as `/%78` and `/x` are, or
   * one request could fill the entry another reads. API Gateway REST hands the handler decoded parameters only.
   */
  readonly query: ReadonlyArray<QueryPair>;
  /** Request headers, lower-case names, repeated values joined with `, ` (HTTP API `cookies` as `cookie`). */
  readonly headers: Readonly<Record<string, string>>;
  /** The event's `requestContext` (authorizer, IAM caller, client certificate): see `identityOf`. */
  readonly requestContext: Readonly<Record<string, unknown>>;
}

/** A query parameter's name or value, as the handler receives it. */
export type QueryComponent = string;

/** A query parameter: its name and value (`null`: a raw piece without `=`, `?q`, which `?q=` is not). */
export type QueryPair = readonly [QueryComponent, QueryComponent | null];

type Json = Record<string, unknown>;

/**
 * Reads an API Gateway REST (v1), HTTP API (v2), Lambda Function URL or ALB event; `undefined` for any
 * other event.
 */
export function readHttpEvent(event: unknown): HttpRequestView | undefined {
  if (typeof event !== 'object' || event === null) return undefined;
  const e = event as Json;
  const requestContext = (typeof e.requestContext === 'object' && e.requestContext !== null ? e.requestContext : {}) as Json;
  if (e.version === '2.0' && typeof (requestContext.http as Json | undefined)?.method === 'string') {
    const http = requestContext.http as Json;
    const headers = lowerCaseHeaders(e.headers as Json | undefined);
    if (Array.isArray(e.cookies) && e.cookies.length > 0) headers.cookie = e.cookies.join('; ');
    const routeKey = typeof e.routeKey === 'string' ? e.routeKey : '$default';
    return {
      source: String(requestContext.domainName ?? '').includes('.lambda-url.') ? 'function-url' : 'api-gateway-v2',
      method: String(http.method).toUpperCase(),
      path: String(e.rawPath ?? http.path ?? '/'),
      domain: domainOf(requestContext, headers),
      stage: stringOr(requestContext.stage),
      routeTemplate: routeKey === '$default' ? undefined : routeKey.slice(routeKey.indexOf(' ') + 1),
      pathParameters: e.pathParameters as Json | undefined,
      query: byName(queryPairs(String(e.rawQueryString ?? ''))),
      headers,
      requestContext,
    };
  }
  if (typeof e.httpMethod !== 'string') return undefined;
  // Payload format 1.0: API Gateway REST and ALB. ALB has no route templates, stages or authorizers, and
  // passes query parameters as received, without URL-decoding them; REST decodes them.
  const alb = requestContext.elb !== undefined;
  const headers = e.multiValueHeaders ? lowerCaseMultiHeaders(e.multiValueHeaders as Json) : lowerCaseHeaders(e.headers as Json | undefined);
  return {
    source: alb ? 'alb' : 'api-gateway-v1',
    method: e.httpMethod.toUpperCase(),
    path: String(e.path ?? '/'),
    domain: alb ? hostOf(headers) : domainOf(requestContext, headers),
    stage: alb ? undefined : stringOr(requestContext.stage),
    routeTemplate: alb ? undefined : stringOr(e.resource),
    pathParameters: alb ? undefined : (e.pathParameters as Json | undefined),
    query: byName(entriesOf(e.multiValueQueryStringParameters ?? e.queryStringParameters)),
    headers,
    requestContext: alb ? {} : requestContext,
  };
}

/**
 * A copy of `event` whose request header fields `fields` (lower-case names) are set, or removed where the
 * value is `undefined`, in every bag the integration hands the handler (`headers`, `multiValueHeaders`),
 * whatever their spelling there. A REST API keeps the client's spelling, so new fields take the usual one
 * (`If-None-Match`); HTTP APIs, Function URLs and ALB give lower-case names.
 */
export function withRequestHeaders(event: unknown, source: HttpEventSource, fields: Readonly<Record<string, string | undefined>>): unknown {
  const copy: Json = { ...(event as Json) };
  const spell = (name: string) => (source === 'api-gateway-v1' ? name.replace(/(^|-)([a-z])/g, (_all, dash: string, letter: string) => dash + letter.toUpperCase()) : name);
  const bags = (['headers', 'multiValueHeaders'] as const).filter((bag) => typeof copy[bag] === 'object' && copy[bag] !== null);
  if (bags.length === 0) bags.push('headers');
  for (const bag of bags) {
    const headers: Json = { ...(copy[bag] as Json | undefined) };
    for (const [name, value] of Object.entries(fields)) {
      for (const existing of Object.keys(headers)) if (existing.toLowerCase() === name) delete headers[existing];
      if (value !== undefined) headers[spell(name)] = bag === 'headers' ? value : [value];
    }
    copy[bag] = headers;
  }
  return copy;
}

function domainOf(requestContext: Json, headers: Record<string, string>): string | undefined {
  return typeof requestContext.domainName === 'string' && requestContext.domainName !== '' ? requestContext.domainName.toLowerCase() : hostOf(headers);
}

function hostOf(headers: Record<string, string>): string | undefined {
  return headers.host?.toLowerCase();
}

function stringOr(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function lowerCaseHeaders(headers: Json | undefined | null): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (value === undefined || value === null) continue;
    const lower = name.toLowerCase();
    result[lower] = result[lower] === undefined ? String(value) : `${result[lower]}, ${String(value)}`;
  }
  return result;
}

function lowerCaseMultiHeaders(headers: Json): Record<string, string> {
  const joined: Json = {};
  for (const [name, values] of Object.entries(headers)) {
    if (Array.isArray(values)) joined[name] = values.join(', ');
  }
  return lowerCaseHeaders(joined);
}

function entriesOf(parameters: unknown): QueryPair[] {
  const entries: QueryPair[] = [];
  for (const [name, value] of Object.entries((parameters ?? {}) as Json)) {
    for (const one of Array.isArray(value) ? value : [value]) {
      if (one !== undefined && one !== null) entries.push([name, String(one)]);
    }
  }
  return entries;
}

/** Sorted by name only: Array.prototype.sort is stable, so the values of one name keep their order. */
function byName(entries: Iterable<QueryPair>): QueryPair[] {
  const order = (name: QueryComponent) => JSON.stringify(name);
  return [...entries].sort(([a], [b]) => {
    const [x, y] = [order(a), order(b)];
    return x < y ? -1 : x > y ? 1 : 0;
  });
}

/**
 * The name-value pairs of a raw query string as received (`&`-separated, empty pieces skipped, the first `=`
 * splits), not decoded: the handler has the raw string too.
 */
function queryPairs(raw: string): QueryPair[] {
  const pairs: QueryPair[] = [];
  for (const piece of raw.split('&')) {
    if (piece === '') continue;
    const equals = piece.indexOf('=');
    pairs.push(equals < 0 ? [piece, null] : [piece.slice(0, equals), piece.slice(equals + 1)]);
  }
  return pairs;
}
