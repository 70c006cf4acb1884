import { sha256 } from '../keys.ts';

/** Which Lambda integration an HTTP event came from. */
export type HttpEventSource = 'api-gateway-v1' | 'api-gateway-v2' | 'function-url' | 'alb';

/** The parts of an HTTP event that response memoization needs, the same for every source. */
export interface HttpRequestView {
  readonly source: HttpEventSource;
  /** Upper-case method. */
  readonly method: string;
  /** The request path as received. */
  readonly path: string;
  /** The route template key (`GET /users/{id}`) where the integration has one, else `METHOD path`. */
  readonly routeKey: string;
  /** Query parameters, decoded, sorted by name then value: `?b=2&a=1` and `?a=1&b=2` are one request. */
  readonly query: ReadonlyArray<readonly [string, string]>;
  /** Request headers, lower-case names, repeated values joined with `, `. */
  readonly headers: Readonly<Record<string, string>>;
  /**
   * Who is asking, when the request is authenticated: the authorizer's identity (Cognito/JWT claims, Lambda
   * authorizer principal, IAM caller, ALB OIDC identity) or, failing that, a hash of the credential
   * headers. `undefined` for an anonymous request.
   */
  readonly principal: string | undefined;
}

type Json = Record<string, unknown>;

/** Request headers that carry credentials: a request with any of them is keyed by them unless shared. */
export const DEFAULT_CREDENTIAL_HEADERS: readonly string[] = ['authorization', 'cookie', 'x-api-key'];

/**
 * Reads an API Gateway REST (v1), HTTP API (v2), Lambda Function URL or ALB event; `undefined` for any
 * other event.
 */
export function readHttpEvent(event: unknown, credentialHeaders: readonly string[] = DEFAULT_CREDENTIAL_HEADERS): HttpRequestView | undefined {
  if (typeof event !== 'object' || event === null) return undefined;
  const e = event as Json;
  const requestContext = (e.requestContext ?? {}) as Json;
  let view: Omit<HttpRequestView, 'principal'> & { authorizer?: Json | undefined; identity?: Json | undefined };
  if (e.version === '2.0' && typeof (requestContext.http as Json | undefined)?.method === 'string') {
    const http = requestContext.http as Json;
    const method = String(http.method).toUpperCase();
    const path = String(e.rawPath ?? http.path ?? '/');
    const routeKey = typeof e.routeKey === 'string' && e.routeKey !== '$default' ? e.routeKey : `${method} ${path}`;
    const headers = lowerCaseHeaders(e.headers as Json | undefined);
    if (Array.isArray(e.cookies) && e.cookies.length > 0) headers.cookie = e.cookies.join('; ');
    view = {
      source: String(requestContext.domainName ?? '').includes('.lambda-url.') ? 'function-url' : 'api-gateway-v2',
      method,
      path,
      routeKey,
      query: sortQuery(new URLSearchParams(String(e.rawQueryString ?? ''))),
      headers,
      authorizer: requestContext.authorizer as Json | undefined,
    };
  } else if (typeof e.httpMethod === 'string') {
    // Payload format 1.0: API Gateway REST and ALB. ALB has no route templates and no authorizer, and passes
    // query parameters as received, without URL-decoding them.
    const alb = requestContext.elb !== undefined;
    const method = e.httpMethod.toUpperCase();
    const path = String(e.path ?? '/');
    view = {
      source: alb ? 'alb' : 'api-gateway-v1',
      method,
      path,
      routeKey: !alb && typeof e.resource === 'string' ? `${method} ${e.resource}` : `${method} ${path}`,
      query: sortQuery(entriesOf(e.multiValueQueryStringParameters ?? e.queryStringParameters, alb ? decodeComponent : (v) => v)),
      headers: e.multiValueHeaders ? lowerCaseMultiHeaders(e.multiValueHeaders as Json) : lowerCaseHeaders(e.headers as Json | undefined),
      authorizer: alb ? undefined : (requestContext.authorizer as Json | undefined),
      identity: alb ? undefined : (requestContext.identity as Json | undefined),
    };
  } else {
    return undefined;
  }
  const { authorizer, identity, ...rest } = view;
  return { ...rest, principal: principalOf(authorizer, identity, rest.headers, credentialHeaders) };
}

/**
 * The identity behind a request, most specific first. Authorizer identities are stable across token
 * refreshes, so they are preferred to hashing the credential header itself.
 */
function principalOf(authorizer: Json | undefined, identity: Json | undefined, headers: Record<string, string>, credentialHeaders: readonly string[]): string | undefined {
  if (authorizer !== undefined && authorizer !== null) {
    const jwt = authorizer.jwt as Json | undefined;
    const claims = (jwt?.claims ?? authorizer.claims) as Json | undefined;
    if (claims && (claims.sub !== undefined || claims['cognito:username'] !== undefined || claims.username !== undefined)) {
      return `claims:${String(claims.iss ?? '')}|${String(claims.sub ?? claims['cognito:username'] ?? claims.username)}`;
    }
    const iam = authorizer.iam as Json | undefined;
    if (iam && (iam.userArn || iam.userId || iam.cognitoIdentity)) {
      return `iam:${String(iam.userArn ?? '')}|${String(iam.userId ?? '')}|${JSON.stringify(iam.cognitoIdentity ?? null)}`;
    }
    if (typeof authorizer.principalId === 'string' && authorizer.principalId !== '') return `principal:${authorizer.principalId}`;
    // An HTTP API Lambda authorizer with simple responses passes only its context object.
    if (authorizer.lambda !== undefined && authorizer.lambda !== null) return `lambda-authorizer:${sha256(stableJson(authorizer.lambda))}`;
  }
  if (identity && (identity.userArn || identity.cognitoIdentityId || identity.caller || identity.user)) {
    return `iam:${String(identity.userArn ?? identity.caller ?? identity.user ?? '')}|${String(identity.cognitoIdentityId ?? '')}`;
  }
  if (headers['x-amzn-oidc-identity']) return `oidc:${headers['x-amzn-oidc-identity']}`;
  const credentials = credentialHeaders.map((name) => headers[name.toLowerCase()]).filter((value) => value !== undefined && value !== '');
  if (credentials.length > 0) return `credentials:${sha256(credentialHeaders.map((name) => `${name}=${headers[name.toLowerCase()] ?? ''}`).join('\n'))}`;
  return undefined;
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

function entriesOf(parameters: unknown, decode: (value: string) => string): Array<[string, string]> {
  const entries: Array<[string, string]> = [];
  for (const [name, value] of Object.entries((parameters ?? {}) as Json)) {
    for (const one of Array.isArray(value) ? value : [value]) {
      if (one !== undefined && one !== null) entries.push([decode(name), decode(String(one))]);
    }
  }
  return entries;
}

function sortQuery(entries: Iterable<[string, string]>): Array<[string, string]> {
  return [...entries].sort(([an, av], [bn, bv]) => (an === bn ? compare(av, bv) : compare(an, bn)));
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function decodeComponent(value: string): string {
  try {
    return decodeURIComponent(value.replace(/\+/g, ' '));
  } catch {
    return value;
  }
}

/** JSON with object keys sorted, so equal objects give equal text whatever their key order. */
export function stableJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Json).sort(([a], [b]) => compare(a, b))) : v,
  );
}
