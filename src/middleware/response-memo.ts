import { search } from '@aws-lambda-powertools/jmespath';
import type { Context } from 'aws-lambda';
import type { DynamoCache, FetchTurn, GetOrSetOptions } from '../cache.ts';
import { InvalidOptionsError, InvalidValueError } from '../errors.ts';
import { sha256 } from '../keys.ts';
import { booleanOption, finiteNumber, nonNegativeNumber } from '../options.ts';
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
  ttlSeconds?: number | undefined;
  /**
   * The route answers every caller the same, so authenticated requests are not keyed by their principal.
   * Only for routes whose response does not depend on who asks: a hit is served to anyone. Default `false`.
   */
  shared?: boolean | undefined;
  /** Request headers that are part of this route's key. Default: `response.vary`. */
  vary?: string[] | undefined;
  /** Seconds past the TTL during which a stale response is served while one request refreshes it. Default: `response.staleWhileRevalidateSeconds`. */
  staleWhileRevalidateSeconds?: number | undefined;
  /** Seconds past the TTL during which a stale response replaces a handler error or a 5xx/429 response. Default: `response.staleIfErrorSeconds`. */
  staleIfErrorSeconds?: number | undefined;
}

/** Options of response memoization (`dynamoCache({ response })`). */
export interface ResponseMemoOptions {
  /** Longest TTL of a stored response, in seconds; a shorter `s-maxage`/`max-age` from the response wins. Default `60`. */
  ttlSeconds?: number | undefined;
  /** Per-route options by route key (`'GET /users/{id}'` for REST and HTTP APIs, `'GET /path'` otherwise); `false` disables a route. */
  routes?: Record<string, RouteOptions | false> | undefined;
  /** Request headers that are part of every key (a response may `Vary` only on these). Default `[]`. */
  vary?: string[] | undefined;
  /** Status codes that may be stored. Default `[200, 203, 204]`. */
  statusCodes?: number[] | undefined;
  /** Whether authenticated requests share responses across principals on every route. Default `false`. */
  shared?: boolean | undefined;
  /**
   * Request headers that carry credentials: a request with any of them, and no authorizer identity, is keyed
   * by a hash of them. Default `['authorization', 'cookie', 'x-api-key']`.
   */
  credentialHeaders?: string[] | undefined;
  /** Let a client's `Cache-Control: no-cache` skip the stored response (the new one is still stored). Default `false`. */
  honorClientNoCache?: boolean | undefined;
  /**
   * A custom key: a JMESPath expression or a function. Required to memoize non-HTTP events; for HTTP
   * events it replaces method + path + query + vary headers (the principal is still added unless shared).
   */
  key?: MemoKey | undefined;
  /** Prefix of every memo key, so functions sharing a namespace never share responses. Default: `AWS_LAMBDA_FUNCTION_NAME`. */
  keyPrefix?: string | undefined;
  /** Seconds past the TTL during which a stale response is served while one request refreshes it (the lease winner runs the handler). Default `0`. */
  staleWhileRevalidateSeconds?: number | undefined;
  /** Seconds past the TTL during which a stale response replaces a handler error or a 5xx/429 response. Default `0`. */
  staleIfErrorSeconds?: number | undefined;
}

/** The header naming where a response came from. */
export const X_CACHE = 'X-Cache';

/** The rules of one route: what may be stored, and how long stale responses stay usable. */
interface RoutePolicy extends StoragePolicy {
  readonly shared: boolean;
  readonly staleWhileRevalidateSeconds: number;
  readonly staleIfErrorSeconds: number;
}

/** What `before` decided for one request; kept in `request.internal` until `after` or `onError`. */
export interface MemoPlan {
  readonly key: string;
  readonly http: HttpRequestView | undefined;
  readonly policy: RoutePolicy;
  /** The caller's turn to produce the response (it may hold the refresh lease); absent when the cache was skipped. */
  turn?: FetchTurn<StoredResult>;
}

/** Statuses that, like a thrown error, may be replaced by a stale response within `staleIfErrorSeconds` (RFC 5861). */
const ERROR_STATUSES = new Set([429, 500, 502, 503, 504]);

/** A response (or any handler result, for non-HTTP events) as stored in the cache. */
export type StoredResult =
  | { v: 1; kind: 'http'; response: HttpResponse; storedAt: number; age: number }
  | { v: 1; kind: 'value'; value: unknown };

const CACHEABLE_METHODS = new Set(['GET', 'HEAD']);

/**
 * Response memoization: decides per request whether and under which key a result may be stored, answers
 * from the cache, and stores results by HTTP's rules. Never throws: a cache failure means "run the handler".
 */
export class ResponseMemo {
  readonly #cache: DynamoCache;
  readonly #defaults: RoutePolicy;
  readonly #routes: ReadonlyMap<string, RoutePolicy | false>;
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
      staleWhileRevalidateSeconds: nonNegativeNumber('response.staleWhileRevalidateSeconds', options.staleWhileRevalidateSeconds ?? 0),
      staleIfErrorSeconds: nonNegativeNumber('response.staleIfErrorSeconds', options.staleIfErrorSeconds ?? 0),
    };
    this.#defaults = base;
    const routes = new Map<string, RoutePolicy | false>();
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
        staleWhileRevalidateSeconds:
          route.staleWhileRevalidateSeconds === undefined
            ? base.staleWhileRevalidateSeconds
            : nonNegativeNumber(`routes["${routeKey}"].staleWhileRevalidateSeconds`, route.staleWhileRevalidateSeconds),
        staleIfErrorSeconds:
          route.staleIfErrorSeconds === undefined ? base.staleIfErrorSeconds : nonNegativeNumber(`routes["${routeKey}"].staleIfErrorSeconds`, route.staleIfErrorSeconds),
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

  /**
   * The stored result for `plan`, ready to return, or `undefined` to run the handler. On a miss the plan
   * gets the turn to produce the response: with the lease, the only request in the fleet that runs the
   * handler for this key; the others wait for its response or are answered with a stale one.
   */
  async lookup(plan: MemoPlan): Promise<unknown> {
    if (plan.http !== undefined && this.#honorClientNoCache && /\bno-cache\b/i.test(plan.http.headers['cache-control'] ?? '')) return undefined;
    const acquisition = await this.#cache.acquire<StoredResult>(plan.key, this.#refreshOptions(plan.policy));
    if (!acquisition.found) {
      plan.turn = acquisition;
      return undefined;
    }
    return this.#answer(plan, acquisition.value);
  }

  /**
   * Stores the handler's result when the rules allow, and returns the result to send: for HTTP, with
   * `X-Cache: Miss` and an `ETag`, or a `304` when the request's `If-None-Match` matches. A 5xx or 429
   * response is replaced by a stale one when `staleIfErrorSeconds` allows.
   */
  async store(plan: MemoPlan, result: unknown): Promise<unknown> {
    if (plan.http === undefined) {
      await this.#save(plan, result === undefined ? undefined : { v: 1, kind: 'value', value: result }, plan.policy.ttlSeconds, true);
      return result;
    }
    const response = toHttpResponse(result, plan.http);
    if (response === undefined) {
      await this.#save(plan, undefined, 0, true); // a stream, or not an HTTP response: passed through untouched
      return result;
    }
    if (ERROR_STATUSES.has(response.statusCode)) {
      const stale = await this.recover(plan, new Error(`handler answered ${response.statusCode}`));
      if (stale !== undefined) return stale;
    }
    if (response.statusCode >= 200 && response.statusCode < 300 && headersOf(response).etag === undefined) setHeader(response, 'ETag', etagFor(response));
    const decision = decideStorage(plan.http, response, plan.policy);
    if (decision.store) {
      const headers = headersOf(response);
      const stored: StoredResult = { v: 1, kind: 'http', response: structuredClone(response), storedAt: Date.now(), age: Number(headers.age ?? 0) || 0 };
      // must-revalidate and proxy-revalidate forbid serving the response once stale.
      const revalidate = /\b(must|proxy)-revalidate\b/i.test(headers['cache-control'] ?? '');
      await this.#save(plan, stored, decision.ttlSeconds, !revalidate);
    } else {
      this.#cache.logger.debug('dynamo-cache: response not stored', { key: plan.key, reason: decision.reason });
      await this.#save(plan, undefined, 0, true);
    }
    setHeader(response, X_CACHE, 'Miss');
    return this.#conditional(plan.http, response);
  }

  /**
   * The handler failed: ends the turn and returns the stale result to answer with (within
   * `staleIfErrorSeconds`), or `undefined` to let the failure through.
   */
  async recover(plan: MemoPlan, error: unknown): Promise<unknown> {
    const turn = plan.turn;
    plan.turn = undefined;
    if (turn === undefined) return undefined;
    const fallback = await turn.fail(error);
    return fallback === undefined ? undefined : this.#answer(plan, fallback.value);
  }

  /** Ends the turn: stores `stored` (or nothing) and gives the lease back; without a turn, a plain `set`. */
  async #save(plan: MemoPlan, stored: StoredResult | undefined, ttlSeconds: number, allowStale: boolean): Promise<void> {
    const turn = plan.turn;
    plan.turn = undefined;
    const lifetime = allowStale ? {} : { staleWhileRevalidateSeconds: 0, staleIfErrorSeconds: 0 };
    try {
      if (stored === undefined) await turn?.abandon();
      else if (turn !== undefined) await turn.fulfil(stored, { ...this.#refreshOptions(plan.policy), ttlSeconds, ...lifetime });
      else await this.#cache.set(plan.key, stored, { ...this.#refreshOptions(plan.policy), ttlSeconds, ...lifetime });
    } catch (error) {
      if (!(error instanceof InvalidValueError)) throw error;
      await turn?.abandon().catch(() => undefined);
      this.#cache.logger.warn('dynamo-cache: handler result cannot be stored; not memoized', { key: plan.key, errorMessage: error.message });
    }
  }

  /** A stored result as the response to send, or `undefined` (run the handler) when its shape is wrong. */
  #answer(plan: MemoPlan, stored: StoredResult | undefined): unknown {
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

  #refreshOptions(policy: RoutePolicy): GetOrSetOptions {
    return { ttlSeconds: policy.ttlSeconds, staleWhileRevalidateSeconds: policy.staleWhileRevalidateSeconds, staleIfErrorSeconds: policy.staleIfErrorSeconds };
  }

  #conditional(request: HttpRequestView, response: HttpResponse): HttpResponse {
    const etag = headersOf(response).etag;
    const matches = response.statusCode === 200 && etag !== undefined && ifNoneMatchMatches(request.headers['if-none-match'], etag);
    return matches ? notModified(response) : response;
  }

  #route(http: HttpRequestView): RoutePolicy | false {
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
