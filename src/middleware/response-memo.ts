import { search } from '@aws-lambda-powertools/jmespath';
import type { Context } from 'aws-lambda';
import type { DynamoCache } from '../cache.ts';
import { InvalidOptionsError, InvalidValueError } from '../errors.ts';
import { sha256 } from '../keys.ts';
import { booleanOption, finiteNumber } from '../options.ts';
import { DEFAULT_CREDENTIAL_HEADERS, readHttpEvent, stableJson, type HttpRequestView } from './http-event.ts';
import {
  decideStorage,
  etagFor,
  headersOf,
  ifNoneMatchMatches,
  notModified,
  setHeader,
  toHttpResponse,
  type HttpResponse,
  type StoragePolicy,
} from './http-response.ts';

/**
 * How a request's memo key is made, for events the default HTTP key does not fit: a JMESPath expression
 * over the event (as Powertools idempotency's `eventKeyJmesPath`), or a function. `undefined` (or a
 * JMESPath result of `null`) means "do not memoize this request".
 */
export type MemoKey = string | ((event: unknown, context: Context) => string | undefined);

/** Options of one route (`'GET /users/{id}'`); `false` in place of the object disables the route. */
export interface RouteOptions {
  /** Longest TTL of this route's responses, in seconds. Default: `response.ttlSeconds`. */
  ttlSeconds?: number;
  /**
   * The route answers every caller the same, so authenticated requests are not keyed by their principal.
   * Only for routes whose response does not depend on who asks: a hit is served to anyone. Default `false`.
   */
  shared?: boolean;
  /** Request headers that are part of this route's key. Default: `response.vary`. */
  vary?: string[];
}

/** Options of response memoization (`dynamoCache({ response })`). */
export interface ResponseMemoOptions {
  /** Longest TTL of a stored response, in seconds; a shorter `s-maxage`/`max-age` from the response wins. Default `60`. */
  ttlSeconds?: number;
  /** Per-route options by route key (`'GET /users/{id}'` for REST and HTTP APIs, `'GET /path'` otherwise); `false` disables a route. */
  routes?: Record<string, RouteOptions | false>;
  /** Request headers that are part of every key (a response may `Vary` only on these). Default `[]`. */
  vary?: string[];
  /** Status codes that may be stored. Default `[200, 203, 204]`. */
  statusCodes?: number[];
  /** Whether authenticated requests share responses across principals on every route. Default `false`. */
  shared?: boolean;
  /**
   * Request headers that carry credentials: a request with any of them, and no authorizer identity, is keyed
   * by a hash of them. Default `['authorization', 'cookie', 'x-api-key']`.
   */
  credentialHeaders?: string[];
  /** Let a client's `Cache-Control: no-cache` skip the stored response (the new one is still stored). Default `false`. */
  honorClientNoCache?: boolean;
  /**
   * A custom key: a JMESPath expression or a function. Required to memoize non-HTTP events; for HTTP
   * events it replaces method + path + query + vary headers (the principal is still added unless shared).
   */
  key?: MemoKey;
  /** Prefix of every memo key, so functions sharing a namespace never share responses. Default: `AWS_LAMBDA_FUNCTION_NAME`. */
  keyPrefix?: string;
}

/** The header naming where a response came from. */
export const X_CACHE = 'X-Cache';

/** What `before` decided for one request; kept in `request.internal` until `after`. */
export interface MemoPlan {
  readonly key: string;
  readonly http: HttpRequestView | undefined;
  readonly policy: StoragePolicy;
}

/** A response (or any handler result, for non-HTTP events) as stored in the cache. */
type StoredResult =
  | { v: 1; kind: 'http'; response: HttpResponse; storedAt: number; age: number }
  | { v: 1; kind: 'value'; value: unknown };

const CACHEABLE_METHODS = new Set(['GET', 'HEAD']);

/**
 * Response memoization: decides per request whether and under which key a result may be stored, answers
 * from the cache, and stores results by HTTP's rules. Never throws: a cache failure means "run the handler".
 */
export class ResponseMemo {
  readonly #cache: DynamoCache;
  readonly #defaults: StoragePolicy & { shared: boolean };
  readonly #routes: ReadonlyMap<string, (StoragePolicy & { shared: boolean }) | false>;
  readonly #credentialHeaders: readonly string[];
  readonly #honorClientNoCache: boolean;
  readonly #key: MemoKey | undefined;
  readonly #prefix: string;

  /** @throws InvalidOptionsError for a malformed option. */
  constructor(cache: DynamoCache, options: ResponseMemoOptions) {
    this.#cache = cache;
    const base = {
      ttlSeconds: finiteNumber('response.ttlSeconds', options.ttlSeconds ?? 60),
      statusCodes: new Set(statusCodes(options.statusCodes ?? [200, 203, 204])),
      vary: headerSet('response.vary', options.vary ?? []),
      shared: booleanOption('response.shared', options.shared ?? false),
    };
    this.#defaults = base;
    const routes = new Map<string, (StoragePolicy & { shared: boolean }) | false>();
    for (const [routeKey, route] of Object.entries(options.routes ?? {})) {
      if (route === false) {
        routes.set(normalizeRouteKey(routeKey), false);
        continue;
      }
      if (typeof route !== 'object' || route === null) throw new InvalidOptionsError(`response.routes["${routeKey}"] must be an object or false`);
      routes.set(normalizeRouteKey(routeKey), {
        ...base,
        ttlSeconds: route.ttlSeconds === undefined ? base.ttlSeconds : finiteNumber(`routes["${routeKey}"].ttlSeconds`, route.ttlSeconds),
        shared: route.shared === undefined ? base.shared : booleanOption(`routes["${routeKey}"].shared`, route.shared),
        vary: route.vary === undefined ? base.vary : headerSet(`routes["${routeKey}"].vary`, route.vary),
      });
    }
    this.#routes = routes;
    this.#credentialHeaders = options.credentialHeaders ?? DEFAULT_CREDENTIAL_HEADERS;
    this.#honorClientNoCache = booleanOption('response.honorClientNoCache', options.honorClientNoCache ?? false);
    if (options.key !== undefined && typeof options.key !== 'string' && typeof options.key !== 'function') {
      throw new InvalidOptionsError('response.key must be a JMESPath expression or a function');
    }
    if (typeof options.key === 'string') compileCheck(options.key);
    this.#key = options.key;
    this.#prefix = options.keyPrefix ?? process.env.AWS_LAMBDA_FUNCTION_NAME ?? '';
  }

  /** The plan for this request, or `undefined` when it is not memoized (POST, disabled route, no key...). */
  plan(event: unknown, context: Context): MemoPlan | undefined {
    const http = readHttpEvent(event, this.#credentialHeaders);
    if (http === undefined) {
      const custom = this.#customKey(event, context);
      return custom === undefined ? undefined : { key: `${this.#prefix}:event:${custom}`, http, policy: this.#defaults };
    }
    if (!CACHEABLE_METHODS.has(http.method)) return undefined;
    const route = this.#route(http);
    if (route === false) return undefined;
    let key: string;
    if (this.#key === undefined) {
      const query = new URLSearchParams(http.query as Array<[string, string]>).toString();
      key = `${http.method} ${http.path}${query === '' ? '' : `?${query}`}`;
    } else {
      const custom = this.#customKey(event, context);
      if (custom === undefined) return undefined;
      key = `${http.method} key:${custom}`;
    }
    const varyNames = [...route.vary].sort();
    if (varyNames.length > 0) key += `|vary:${sha256(varyNames.map((name) => `${name}=${http.headers[name] ?? ''}`).join('\n'))}`;
    if (!route.shared && http.principal !== undefined) key += `|principal:${sha256(http.principal)}`;
    return { key: `${this.#prefix}:http:${key}`, http, policy: route };
  }

  /** The stored result for `plan`, ready to return, or `undefined` on a miss (or any cache problem). */
  async lookup(plan: MemoPlan): Promise<unknown> {
    if (plan.http !== undefined && this.#honorClientNoCache && /\bno-cache\b/i.test(plan.http.headers['cache-control'] ?? '')) return undefined;
    const stored = await this.#cache.get<StoredResult>(plan.key);
    if (stored === undefined) return undefined;
    if (!isStoredResult(stored, plan.http !== undefined)) {
      this.#cache.logger.warn('dynamo-cache: stored response has an unexpected shape; running the handler', { key: plan.key });
      return undefined;
    }
    if (stored.kind === 'value') return stored.value;
    const response = stored.response;
    setHeader(response, X_CACHE, 'Hit');
    setHeader(response, 'Age', String(stored.age + Math.max(0, Math.floor((Date.now() - stored.storedAt) / 1000))));
    return this.#conditional(plan.http!, response);
  }

  /**
   * Stores the handler's result when the rules allow, and returns the result to send: for HTTP, with
   * `X-Cache: Miss` and an `ETag`, or a `304` when the request's `If-None-Match` matches.
   */
  async store(plan: MemoPlan, result: unknown): Promise<unknown> {
    if (plan.http === undefined) {
      if (result !== undefined) await this.#set(plan.key, { v: 1, kind: 'value', value: result }, plan.policy.ttlSeconds);
      return result;
    }
    const response = toHttpResponse(result, plan.http);
    if (response === undefined) return result; // a stream, or not an HTTP response: passed through untouched
    if (response.statusCode >= 200 && response.statusCode < 300 && headersOf(response).etag === undefined) setHeader(response, 'ETag', etagFor(response));
    const decision = decideStorage(plan.http, response, plan.policy);
    if (decision.store) {
      const stored = structuredClone(response);
      await this.#set(plan.key, { v: 1, kind: 'http', response: stored, storedAt: Date.now(), age: Number(headersOf(response).age ?? 0) || 0 }, decision.ttlSeconds);
    } else {
      this.#cache.logger.debug('dynamo-cache: response not stored', { key: plan.key, reason: decision.reason });
    }
    setHeader(response, X_CACHE, 'Miss');
    return this.#conditional(plan.http, response);
  }

  async #set(key: string, stored: StoredResult, ttlSeconds: number): Promise<void> {
    try {
      await this.#cache.set(key, stored, { ttlSeconds });
    } catch (error) {
      if (!(error instanceof InvalidValueError)) throw error;
      this.#cache.logger.warn('dynamo-cache: handler result cannot be stored; not memoized', { key, errorMessage: error.message });
    }
  }

  #conditional(request: HttpRequestView, response: HttpResponse): HttpResponse {
    const etag = headersOf(response).etag;
    const matches = response.statusCode === 200 && etag !== undefined && ifNoneMatchMatches(request.headers['if-none-match'], etag);
    return matches ? notModified(response) : response;
  }

  #route(http: HttpRequestView): (StoragePolicy & { shared: boolean }) | false {
    const candidates = [http.routeKey, `${http.method} ${http.path}`];
    // A HEAD request follows its GET route's options.
    if (http.method === 'HEAD') candidates.push(`GET ${http.routeKey.slice(5)}`, `GET ${http.path}`);
    for (const candidate of candidates) {
      const route = this.#routes.get(normalizeRouteKey(candidate));
      if (route !== undefined) return route;
    }
    return this.#defaults;
  }

  #customKey(event: unknown, context: Context): string | undefined {
    if (this.#key === undefined) return undefined;
    let result: unknown;
    try {
      result = typeof this.#key === 'string' ? search(this.#key, event as never) : this.#key(event, context);
    } catch (error) {
      this.#cache.logger.warn('dynamo-cache: memo key could not be computed; not memoized', { errorMessage: (error as Error).message });
      return undefined;
    }
    if (result === undefined || result === null || result === '') return undefined;
    return typeof result === 'string' ? result : stableJson(result);
  }
}

function isStoredResult(value: unknown, http: boolean): value is StoredResult {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  if (v.v !== 1) return false;
  if (!http) return v.kind === 'value' && 'value' in v;
  const response = v.response as Record<string, unknown> | undefined;
  const isBag = (bag: unknown) => bag === undefined || (typeof bag === 'object' && bag !== null && !Array.isArray(bag));
  return (
    v.kind === 'http' &&
    typeof v.storedAt === 'number' &&
    typeof v.age === 'number' &&
    typeof response?.statusCode === 'number' &&
    isBag(response.headers) &&
    isBag(response.multiValueHeaders) &&
    Object.values(response.multiValueHeaders ?? {}).every(Array.isArray)
  );
}

function normalizeRouteKey(routeKey: string): string {
  const [method = '', ...rest] = routeKey.trim().split(/\s+/);
  return `${method.toUpperCase()} ${rest.join(' ')}`;
}

function statusCodes(codes: unknown): number[] {
  if (!Array.isArray(codes) || codes.some((code) => !Number.isInteger(code) || code < 100 || code > 599)) {
    throw new InvalidOptionsError('response.statusCodes must be an array of HTTP status codes');
  }
  return codes;
}

function headerSet(name: string, headers: unknown): Set<string> {
  if (!Array.isArray(headers) || headers.some((h) => typeof h !== 'string' || h === '')) throw new InvalidOptionsError(`${name} must be an array of header names`);
  return new Set(headers.map((h: string) => h.toLowerCase()));
}

function compileCheck(expression: string): void {
  try {
    search(expression, {});
  } catch (error) {
    throw new InvalidOptionsError(`response.key is not a valid JMESPath expression: ${(error as Error).message}`, { cause: error });
  }
}
