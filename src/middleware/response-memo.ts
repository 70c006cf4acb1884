import type { Functions } from '@aws-lambda-powertools/jmespath/functions';
import type { Context } from 'aws-lambda';
import type { DynamoCache, FetchTurn, GetOrSetOptions } from '../cache.ts';
import type { CacheSource, CallOptions } from '../resilience/call-options.ts';
import { InvalidOptionsError, InvalidValueError } from '../errors.ts';
import { assertKnownOptions } from '../known-options.ts';
import { booleanOption, finiteNumber, nonNegativeNumber } from '../options.ts';
import { TOKEN, ageOf, parseCacheControl } from './cache-control.ts';
import { CustomKey, type MemoKey } from './custom-key.ts';
import { readHttpEvent, withRequestHeaders, type HttpRequestView } from './http-event.ts';
import {
  answersNotModified,
  decideStorage,
  etagFor,
  headersOf,
  notModified,
  setHeader,
  storableCopy,
  takesGeneratedEtag,
  toHttpResponse,
  withoutContent,
  withoutHeaders,
  type HttpResponse,
  type StorageDecision,
  type StoragePolicy,
} from './http-response.ts';
import { DEFAULT_CREDENTIAL_HEADERS, identityOf } from './identity.ts';
import { MAX_TAGS_PER_VALUE, tagProblem } from '../invalidation/tags.ts';
import type { InvalidationMode } from '../invalidation/tag-states.ts';
import { InvalidationRules, SAFE_METHODS, type InvalidationRule, type InvalidationTargets } from './invalidation-rules.ts';
import { eventMemoKey, httpMemoKey, type HttpKeyParts } from './memo-key.ts';
import { conditionalFields, freshened, validatesStored, validatorsOf } from './revalidation.ts';
import { compileTags, impliedTags, type RequestTags, type TagsOption } from './route-tags.ts';
import { RouteTable, paramsOf, parseRouteKey, type RoutePattern } from './route-table.ts';
import { TAG_HEADERS, headerTags } from './tag-headers.ts';
import { StatusHeaders, type CacheOutcome, type StatusHeaderOptions } from './status-headers.ts';
import { isStoredResult, timingOf, type StoredHttpResponse, type StoredResult, type Validators } from './stored-response.ts';
import { DEFAULT_REMOVED_TARGETED_FIELDS, DEFAULT_TARGETED_FIELDS } from './targeted-cache-control.ts';

/** Options of one route (`'GET /users/{id}'`); `false` in place of the object disables the route. */
export interface RouteOptions {
  /** Longest TTL of this route's responses, in seconds. Default: `response.ttlSeconds`. */
  ttlSeconds?: number | undefined;
  /**
   * The route answers every caller the same, so requests are not keyed by their identity. Only for routes
   * whose response does not depend on who asks: a hit is served to anyone. Default: `response.shared`.
   */
  shared?: boolean | undefined;
  /** Request headers that are part of this route's key. Default: `response.vary`. */
  vary?: string[] | undefined;
  /** Seconds past the TTL during which a stale response is served while one request refreshes it. Default: `response.staleWhileRevalidateSeconds`. */
  staleWhileRevalidateSeconds?: number | undefined;
  /** Seconds past the TTL during which a stale response replaces a handler error or a 5xx/429 response. Default: `response.staleIfErrorSeconds`. */
  staleIfErrorSeconds?: number | undefined;
  /** Revalidate stale responses through the handler (see `response.revalidate`). Default: `response.revalidate`. */
  revalidate?: boolean | undefined;
  /**
   * Tags of this route's stored responses, for `invalidateTags` and `invalidates`: templates filled from the
   * route's path parameters (`['user:{id}']`), or a function of the event. Default: `response.tags`.
   */
  tags?: TagsOption | undefined;
}

/** Options of response memoization (`dynamoCache({ response })`). */
export interface ResponseMemoOptions {
  /** Longest TTL of a stored response, in seconds; a shorter `s-maxage`/`max-age`/`Expires` from the response wins. Default `60`. */
  ttlSeconds?: number | undefined;
  /**
   * Per-route options by route key: `'GET /users/{id}'`, `'ANY /files/{proxy+}'`, `'GET /health'`; `false`
   * disables a route under every spelling of its path. Matched on every event source (see docs/middleware.md).
   */
  routes?: Record<string, RouteOptions | false> | undefined;
  /** Request headers that are part of every key (a response may `Vary` only on these). Default `[]`. */
  vary?: string[] | undefined;
  /** Status codes that may be stored (never 206: a partial response is not the resource). Default `[200, 203, 204]`. */
  statusCodes?: number[] | undefined;
  /** Whether requests share responses across identities on every route. Default `false`. */
  shared?: boolean | undefined;
  /** Request headers that carry credentials: when present, they are part of the identity. Default `['authorization', 'cookie', 'x-api-key']`. */
  credentialHeaders?: string[] | undefined;
  /** Let a client's `Cache-Control: no-cache` skip the stored response (the new one is still stored). Default `false`. */
  honorClientNoCache?: boolean | undefined;
  /**
   * A custom key: a JMESPath expression or a function. Required to memoize non-HTTP events; for HTTP
   * events it replaces the path and query (method, domain, stage, vary headers and identity still count).
   * Expressions may use Powertools' functions: `powertools_json(body).orderId`, `powertools_base64(...)`,
   * `powertools_base64_gzip(...)`.
   */
  key?: MemoKey | undefined;
  /**
   * The functions a JMESPath `key` may call: a `Functions` subclass instance from
   * `@aws-lambda-powertools/jmespath/functions`, for custom functions (extend `PowertoolsFunctions` to keep
   * Powertools' own), as Powertools idempotency's `jmesPathOptions`. Default: `new PowertoolsFunctions()`.
   */
  jmesPathFunctions?: Functions | undefined;
  /** Prefix of every memo key, so functions sharing a namespace never share responses. Default: `AWS_LAMBDA_FUNCTION_NAME`. */
  keyPrefix?: string | undefined;
  /**
   * Key by the domain the request was sent to (`requestContext.domainName`, or `Host` on ALB), so two
   * custom domains, or a forged `Host`, never share responses. Default `true`.
   */
  keyByDomain?: boolean | undefined;
  /** Key by the API Gateway stage, so `dev` never answers `prod`. Default `true`. */
  keyByStage?: boolean | undefined;
  /**
   * A 2xx/3xx answer to an unsafe method (POST, PUT, PATCH, DELETE...) invalidates every stored GET/HEAD
   * response of its path (RFC 9111 4.4), whichever function stored it; other environments see it within
   * `memory.ttlSeconds`. Costs one write per such request. Default `true`.
   */
  invalidateOnUnsafeMethods?: boolean | undefined;
  /**
   * What a 2xx/3xx answer to an unsafe route invalidates besides its own path, by route key:
   * `{ 'PUT /users/{id}': ['GET /users/{id}', 'GET /users'] }`, or `{ routes, tags, mode }` (see
   * `InvalidationRule`). The routes' responses may be another function's. Default: none.
   */
  invalidates?: Record<string, readonly string[] | InvalidationRule> | undefined;
  /**
   * Tags of every stored response (routes may have their own): literal tags, or a function of the event. Default: none.
   */
  tags?: TagsOption | undefined;
  /**
   * Stored responses carry their path's and route's tags, so that an unsafe request, an `invalidates` rule or
   * `invalidateRoutes`, in this function or another, can reach them. Costs a read of each tag's state per
   * environment per `memory.ttlSeconds` and one write per new path. `false`: only explicit tags invalidate. Default `true`.
   */
  routeTags?: boolean | undefined;
  /**
   * The handler's `Cache-Tag` (comma-separated) and `Surrogate-Key` (space-separated) list tags of the stored
   * response; they are taken out of responses before they go to clients (and to the cache). `false`: passed
   * on, to a CDN in front. Default `true`.
   */
  removeTagHeaders?: boolean | undefined;
  /**
   * HTTP-proxy mode: store only responses with explicit freshness (`s-maxage`, `max-age` or `Expires`), as a
   * standards reverse proxy does. By default a response without any is stored for the route's `ttlSeconds`. Default `false`.
   */
  requireFreshness?: boolean | undefined;
  /** `X-Cache`, `Age` and RFC 9211 `Cache-Status` on memoized routes. Default `{ xCache: true, age: true, cacheStatus: false }`. */
  statusHeaders?: StatusHeaderOptions | undefined;
  /** Seconds past the TTL during which a stale response is served while one request refreshes it (the lease winner runs the handler). Default `0`. */
  staleWhileRevalidateSeconds?: number | undefined;
  /** Seconds past the TTL during which a stale response replaces a handler error or a 5xx/429 response. Default `0`. */
  staleIfErrorSeconds?: number | undefined;
  /**
   * Revalidation through the handler (RFC 9111 4.3), for handlers that answer conditional requests: a
   * response with the handler's own `ETag` or `Last-Modified` is kept `ttlSeconds` past its freshness (and a
   * `no-cache` one is stored); when it is stale, or `no-cache`/`must-revalidate` requires it, the handler gets
   * the request with `If-None-Match`/`If-Modified-Since`, and a `304` freshens the stored response, whose
   * content is sent. One environment in the fleet revalidates (the refresh lease). Only responses with the
   * handler's own validators are ever revalidated, so a handler that sets none sees no difference. Default `true`
   * (`false`: a stale response is replaced by a full run of the handler, and `no-cache` responses are not stored).
   */
  revalidate?: boolean | undefined;
  /**
   * The RFC 9213 target list: targeted cache-control fields whose directives, when present and valid, replace
   * `Cache-Control` (and `Expires`) for this cache, the first one present winning. `[]` ignores them.
   * Default `['DynamoCache-Control', 'CDN-Cache-Control']`: the field targeted at this cache alone, then the CDN one.
   */
  targetedFields?: string[] | undefined;
  /**
   * Targeted fields (of `targetedFields`) taken out of responses before they go to the client; stored ones
   * keep them. Default `['DynamoCache-Control']`: no cache downstream reads it (RFC 9213 lets a cache remove a
   * field known not to be used downstream), while `CDN-Cache-Control` goes on to a CDN in front, as the RFC expects.
   */
  removeTargetedFields?: string[] | undefined;
}

/** Names of every `ResponseMemoOptions` property, for the unknown-option check. */
const RESPONSE_OPTION_NAMES = [
  'ttlSeconds', 'routes', 'vary', 'statusCodes', 'shared', 'credentialHeaders', 'honorClientNoCache', 'key', 'jmesPathFunctions', 'keyPrefix',
  'keyByDomain', 'keyByStage', 'invalidateOnUnsafeMethods', 'requireFreshness', 'statusHeaders', 'staleWhileRevalidateSeconds', 'staleIfErrorSeconds',
  'revalidate', 'targetedFields', 'removeTargetedFields', 'invalidates', 'tags', 'routeTags', 'removeTagHeaders',
] as const satisfies ReadonlyArray<keyof ResponseMemoOptions>;

/** Names of every `RouteOptions` property. */
const ROUTE_OPTION_NAMES = ['ttlSeconds', 'shared', 'vary', 'staleWhileRevalidateSeconds', 'staleIfErrorSeconds', 'revalidate', 'tags'] as const satisfies ReadonlyArray<keyof RouteOptions>;

/**
 * Where the response to a memoized request came from: `memory` or `dynamodb` (a fresh stored response),
 * `stale` (a stored response past its TTL: stale-while-revalidate, or standing in for a failed handler),
 * `revalidated` (the handler answered `304` to the cache's conditional request: the stored response, freshened,
 * went out), `handler` (the handler ran and its response, or its error, went out).
 */
export type ResponseSource = 'memory' | 'dynamodb' | 'stale' | 'revalidated' | 'handler';

/** What the middleware's `onResult` is told about one memoized request. */
export interface ResponseResult {
  /** The memo key (`<keyPrefix>:http:<sha256>` or `<keyPrefix>:event:<sha256>`): it holds no request data in clear. */
  readonly key: string;
  readonly source: ResponseSource;
  /** Whether the response came from the cache (`memory`, `dynamodb` or `stale`): the handler did not answer. */
  readonly fromCache: boolean;
}

/** The rules of one route: what may be stored, and how long stale responses stay usable. */
interface RoutePolicy extends StoragePolicy {
  readonly shared: boolean;
  /** The `vary` names, sorted: the order they take in the key. */
  readonly varyNames: readonly string[];
  readonly staleWhileRevalidateSeconds: number;
  readonly staleIfErrorSeconds: number;
  /** The route's pattern (`undefined`: the defaults, no route matched). */
  readonly pattern?: RoutePattern | undefined;
  /** The tags of its responses (`tags`), given its parameters and the event. */
  readonly tags?: RequestTags | undefined;
}

/** What `before` decided for a GET, a HEAD or a keyed non-HTTP event; kept in `request.internal` until `after` or `onError`. */
export interface LookupPlan {
  readonly kind: 'lookup';
  /** The memo key. */
  readonly key: string;
  /** The stored response's tags known before the handler runs (its path's, its route's, the route's `tags`): their states are taken at once. */
  readonly tags: readonly string[];
  readonly http: HttpRequestView | undefined;
  readonly policy: RoutePolicy;
  /** A HEAD: answered from its GET's stored response, and never stored itself. */
  readonly head: boolean;
  /** The caller's turn to produce the response (it may hold the refresh lease); absent when the cache was skipped. */
  turn?: FetchTurn<StoredResult> | undefined;
  /** Why the handler runs when it does: `request` when the client's `no-cache` was honoured. */
  forward?: 'uri-miss' | 'request' | undefined;
  /** What bounds every cache call made for this request: the invocation's deadline. */
  readonly call: CallOptions;
  /** Where the response came from, once known. */
  source?: ResponseSource | undefined;
  /** The stale stored response the handler is asked to validate (its validators are in the handler's event). */
  revalidating?: StoredHttpResponse | undefined;
}

/** What `before` decided for an unsafe request: invalidate its path (and what its route's rule names) if it succeeds. */
export interface InvalidationPlan {
  readonly kind: 'invalidate';
  /** For logs: the first tag it invalidates (a hash, no request data in clear). */
  readonly key: string;
  /** The tags to invalidate, by mode. */
  readonly targets: InvalidationTargets;
  readonly http: HttpRequestView;
  /** What bounds the invalidation's write: the invocation's deadline. */
  readonly call: CallOptions;
}

/** A plan for one request. */
export type MemoPlan = LookupPlan | InvalidationPlan;

/** Statuses that, like a thrown error, may be replaced by a stale response within `staleIfErrorSeconds` (RFC 5861). */
const ERROR_STATUSES = new Set([429, 500, 502, 503, 504]);

const CACHEABLE_METHODS = new Set(['GET', 'HEAD']);

/**
 * Response memoization: decides per request whether and under which key a result may be stored, answers
 * from the cache, and stores results by HTTP's rules. Never throws: a cache failure means "run the handler".
 */
export class ResponseMemo {
  readonly #cache: DynamoCache;
  readonly #defaults: RoutePolicy;
  readonly #routes: RouteTable<RoutePolicy>;
  readonly #credentialHeaders: readonly string[];
  readonly #honorClientNoCache: boolean;
  readonly #key: CustomKey | undefined;
  readonly #prefix: string;
  readonly #keyByDomain: boolean;
  readonly #keyByStage: boolean;
  readonly #invalidation: InvalidationRules;
  readonly #routeTags: boolean;
  readonly #status: StatusHeaders;
  /** The targeted fields (and tag fields) clients never see (lower case). */
  readonly #removedFields: readonly string[];

  /** @throws InvalidOptionsError for a malformed option. */
  constructor(cache: DynamoCache, options: ResponseMemoOptions) {
    if (typeof options !== 'object' || options === null) throw new InvalidOptionsError('response must be an object or false');
    assertKnownOptions('response', options, RESPONSE_OPTION_NAMES);
    this.#cache = cache;
    const vary = headerList('response.vary', options.vary ?? []);
    const targetedFields = fieldList('response.targetedFields', options.targetedFields ?? DEFAULT_TARGETED_FIELDS);
    const removedTargetedFields = fieldList('response.removeTargetedFields', options.removeTargetedFields ?? DEFAULT_REMOVED_TARGETED_FIELDS);
    const notTargeted = removedTargetedFields.find((name) => !targetedFields.includes(name));
    // RFC 9213 2.1: a targeted field this cache does not use must be passed through.
    if (notTargeted !== undefined) throw new InvalidOptionsError(`response.removeTargetedFields: ${notTargeted} is not in response.targetedFields, so it must be passed through`);
    const base: RoutePolicy = {
      ttlSeconds: finiteNumber('response.ttlSeconds', options.ttlSeconds ?? 60),
      statusCodes: new Set(statusCodes(options.statusCodes ?? [200, 203, 204])),
      vary: new Set(vary),
      varyNames: vary,
      shared: booleanOption('response.shared', options.shared ?? false),
      requireFreshness: booleanOption('response.requireFreshness', options.requireFreshness ?? false),
      staleWhileRevalidateSeconds: nonNegativeNumber('response.staleWhileRevalidateSeconds', options.staleWhileRevalidateSeconds ?? 0),
      staleIfErrorSeconds: nonNegativeNumber('response.staleIfErrorSeconds', options.staleIfErrorSeconds ?? 0),
      revalidate: booleanOption('response.revalidate', options.revalidate ?? true),
      targetedFields,
      tags: compileTags(options.tags, [], 'response.tags'),
    };
    this.#defaults = base;
    const routes = Object.entries(options.routes ?? {}).map(([routeKey, route]): [string, RoutePolicy | false] => [routeKey, routePolicy(routeKey, route, base)]);
    // A shared route is matched on the path as received only: see RouteTable.
    this.#routes = new RouteTable(routes, (policy) => policy.shared);
    this.#credentialHeaders = headerList('response.credentialHeaders', options.credentialHeaders ?? DEFAULT_CREDENTIAL_HEADERS);
    this.#honorClientNoCache = booleanOption('response.honorClientNoCache', options.honorClientNoCache ?? false);
    if (options.jmesPathFunctions !== undefined && typeof options.key !== 'string') throw new InvalidOptionsError('response.jmesPathFunctions applies to a JMESPath response.key only');
    this.#key = options.key === undefined ? undefined : new CustomKey(options.key, options.jmesPathFunctions);
    this.#prefix = options.keyPrefix ?? process.env.AWS_LAMBDA_FUNCTION_NAME ?? '';
    if (typeof this.#prefix !== 'string') throw new InvalidOptionsError('response.keyPrefix must be a string');
    this.#keyByDomain = booleanOption('response.keyByDomain', options.keyByDomain ?? true);
    this.#keyByStage = booleanOption('response.keyByStage', options.keyByStage ?? true);
    this.#invalidation = new InvalidationRules(options.invalidates, booleanOption('response.invalidateOnUnsafeMethods', options.invalidateOnUnsafeMethods ?? true), this.#keyByDomain);
    this.#routeTags = booleanOption('response.routeTags', options.routeTags ?? true);
    const removeTagHeaders = booleanOption('response.removeTagHeaders', options.removeTagHeaders ?? true);
    this.#removedFields = removeTagHeaders ? [...removedTargetedFields, ...TAG_HEADERS] : removedTargetedFields;
    this.#status = new StatusHeaders(options.statusHeaders);
  }

  /**
   * The plan for this request, or `undefined` when nothing is to be done (a disabled route, an event with
   * no key, a path whose invalidation generation could not be read a moment ago...). `call` (the
   * invocation's deadline) bounds every cache call made for the request, this one's generation read included.
   */
  plan(event: unknown, context: Context, call: CallOptions): MemoPlan | undefined {
    const http = readHttpEvent(event);
    if (http === undefined) {
      const custom = this.#customKey(event, context);
      const tags = custom === undefined ? undefined : this.#tagsOf(this.#defaults, undefined, event, []);
      return tags === undefined ? undefined : { kind: 'lookup', key: eventMemoKey(this.#prefix, custom), tags, http, policy: this.#defaults, head: false, call };
    }
    if (!SAFE_METHODS.has(http.method)) {
      const targets = this.#invalidation.targetsOf(http, event, this.#cache.logger);
      return targets === undefined ? undefined : { kind: 'invalidate', key: targets.expire[0] ?? targets.stale[0]!, targets, http, call };
    }
    if (!CACHEABLE_METHODS.has(http.method)) return undefined;
    const policy = this.#routes.match(http) ?? this.#defaults;
    if (policy === false) return undefined;
    let resource: HttpKeyParts['resource'];
    if (this.#key === undefined) {
      // The path exactly as the handler receives it: two requests share a response only if it sees one path.
      resource = http.source === 'api-gateway-v1' ? ['url', http.path, http.query, 'decoded'] : ['url', http.path, http.query];
    } else {
      const custom = this.#customKey(event, context);
      if (custom === undefined) return undefined;
      resource = ['key', custom];
    }
    const params = policy.pattern === undefined ? undefined : paramsOf(policy.pattern, http);
    const tags = this.#tagsOf(policy, params, event, this.#routeTags ? impliedTags(http, policy.pattern, this.#keyByDomain) : []);
    if (tags === undefined) return undefined;
    const key = httpMemoKey({
      prefix: this.#prefix,
      method: 'GET', // a HEAD is answered from its GET's response
      domain: this.#keyByDomain ? (http.domain ?? null) : null,
      stage: this.#keyByStage ? (http.stage ?? null) : null,
      resource,
      vary: policy.varyNames.map((name) => [name, http.headers[name] ?? null]),
      identity: policy.shared ? null : identityOf(http.source, http.requestContext, http.headers, this.#credentialHeaders),
    });
    return { kind: 'lookup', key, tags, http, policy, head: http.method === 'HEAD', call };
  }

  /** The tags of a response to store under `policy`: `implied` and the route's own; `undefined` (not memoized) when those cannot be had. */
  #tagsOf(policy: RoutePolicy, params: Readonly<Record<string, string>> | undefined, event: unknown, implied: readonly string[]): readonly string[] | undefined {
    const own = policy.tags?.(params, event, this.#cache.logger);
    if (policy.tags !== undefined && own === undefined) return undefined;
    const tags = own === undefined || own.length === 0 ? implied : [...new Set([...implied, ...own])];
    if (tags.length <= MAX_TAGS_PER_VALUE) return tags;
    this.#cache.logger.warn(`dynamo-cache: over ${MAX_TAGS_PER_VALUE} tags; not memoized`);
    return undefined;
  }

  /**
   * The stored result for `plan`, ready to return, or `undefined` to run the handler. On a miss the plan
   * gets the turn to produce the response: with the lease, the only request in the fleet that runs the
   * handler for this key; the others wait for its response or are answered with a stale one. On a
   * revalidating route the turn also takes the stale stored response, if any, whose validators the handler
   * then gets (see `handlerEvent`). A HEAD is answered from its GET's fresh response, without content, and
   * takes no lease.
   */
  async lookup(plan: LookupPlan): Promise<unknown> {
    const bypass = plan.http !== undefined && this.#honorClientNoCache && parseCacheControl(plan.http.headers['cache-control']).has('no-cache');
    if (bypass) plan.forward = 'request';
    return bypass ? undefined : this.#find(plan);
  }

  /**
   * The event the handler gets: `event` itself, or, when the plan revalidates a stored response, a copy
   * carrying its validators as `If-None-Match`/`If-Modified-Since` (in place of the client's).
   */
  handlerEvent(plan: MemoPlan, event: unknown): unknown {
    if (plan.kind !== 'lookup' || plan.revalidating?.validators === undefined || plan.http === undefined) return event;
    return withRequestHeaders(event, plan.http.source, conditionalFields(plan.revalidating.validators));
  }

  /** The stored result under `plan.key`, or `undefined` with the turn to produce it in `plan.turn` (GET) or none (HEAD). */
  async #find(plan: LookupPlan): Promise<unknown> {
    if (plan.head) {
      let source: ResponseSource = 'dynamodb';
      const stored = await this.#cache.get<StoredResult>(plan.key, { ...plan.call, onResult: (result) => (source = responseSource(result.source)) });
      return stored === undefined ? undefined : this.#answer(plan, stored, source);
    }
    const acquisition = await this.#cache.acquire<StoredResult>(plan.key, { ...this.#refreshOptions(plan.policy), ...(plan.tags.length === 0 ? {} : { tags: plan.tags }), ...plan.call });
    if (!acquisition.found) {
      plan.turn = acquisition;
      // The response the turn replaces (the cache read it to hand out the turn): revalidated when it has validators.
      const previous = plan.policy.revalidate ? acquisition.previous?.value : undefined;
      if (isRevalidatable(previous)) plan.revalidating = previous;
      return undefined;
    }
    const answer = this.#answer(plan, acquisition.value, responseSource(acquisition.source));
    // A stale response that must not be served as it is (must-revalidate, no-cache), met while another
    // environment refreshes it: this request runs the handler too, conditionally where it can.
    if (answer === undefined && plan.policy.revalidate && isRevalidatable(acquisition.value)) plan.revalidating = acquisition.value;
    return answer;
  }

  /**
   * After the handler: for a lookup plan, stores the result when the rules allow and returns the result to
   * send (for HTTP, with the status headers and an `ETag`, or a `304` when the client's conditional request
   * allows; a `304` answering a revalidation freshens the stored response, which is sent; a 5xx or 429 is
   * replaced by a stale response when `staleIfErrorSeconds` allows). For an invalidation plan, invalidates
   * its targets when the response is a 2xx or 3xx.
   */
  async store(plan: MemoPlan, result: unknown): Promise<unknown> {
    if (plan.kind === 'invalidate') {
      await this.#invalidate(plan, result);
      return result;
    }
    if (plan.http === undefined) {
      await this.#save(plan, result === undefined ? undefined : { v: 1, kind: 'value', value: result });
      return result;
    }
    const response = toHttpResponse(result, plan.http);
    if (response === undefined) {
      await this.#save(plan, undefined); // a stream, or not an HTTP response: passed through untouched
      return result;
    }
    const revalidated = plan.revalidating;
    plan.revalidating = undefined;
    if (revalidated !== undefined && response.statusCode === 304) {
      const freshenedAnswer = await this.#freshen(plan, plan.http, revalidated, response);
      if (freshenedAnswer !== undefined) return freshenedAnswer;
    }
    if (ERROR_STATUSES.has(response.statusCode)) {
      const stale = await this.recover(plan, new Error(`handler answered ${response.statusCode}`), response.statusCode);
      if (stale !== undefined) return stale;
    }
    const validators = validatorsOf(response);
    if (headersOf(response).etag === undefined && takesGeneratedEtag(plan.http.method, response)) setHeader(response, 'ETag', etagFor(response));
    let stored = false;
    // A HEAD's response is not stored: a HEAD is answered from its GET's, which carries the content.
    if (!plan.head) stored = (await this.#storeResponse(plan, plan.http, response, validators, headerTags(response))).stored;
    const sent = this.#forClient(response);
    this.#status.write(sent, { kind: 'miss', forward: plan.forward ?? 'uri-miss', stored });
    return this.#conditional(plan.http, sent);
  }

  /**
   * The handler answered `304` to the revalidation of `stored`: when the 304 is about that response (RFC
   * 9111 4.3.4), its fields update it (3.2), it is stored again by the same rules as a new response, and
   * sent with its stored content. `undefined` when the 304 is about another response: it goes out as it is.
   */
  async #freshen(plan: LookupPlan, http: HttpRequestView, stored: StoredHttpResponse, answer: HttpResponse): Promise<unknown> {
    if (!validatesStored(stored.validators ?? {}, answer)) {
      this.#cache.logger.debug('dynamo-cache: a 304 for another response than the one revalidated; passed through', { key: plan.key });
      return undefined;
    }
    const response = freshened(withTargetedFields(stored), answer);
    // The handler's validators, as the 304 updates them: the stored response also carries a generated ETag.
    const validators = { ...stored.validators, ...validatorsOf(answer) };
    const tags = [...new Set([...(stored.tags ?? []), ...headerTags(answer)])];
    const { stored: stillStored, ttlSeconds } = await this.#storeResponse(plan, http, response, validators, tags);
    const sent = this.#forClient(response);
    this.#status.write(sent, { kind: 'revalidated', ageSeconds: ageOf(headersOf(answer).age) ?? 0, ttlSeconds, stored: stillStored });
    plan.source = 'revalidated';
    return this.#conditional(http, sent);
  }

  /**
   * Stores `response` (the handler's, or a freshened one) when RFC 9111 and the route allow, ending the turn
   * either way. Resolves whether DynamoDB stored it, and the freshness it was given (0 when not stored).
   */
  async #storeResponse(
    plan: LookupPlan,
    http: HttpRequestView,
    response: HttpResponse,
    validators: Validators | undefined,
    tags: readonly string[],
  ): Promise<{ stored: boolean; ttlSeconds: number }> {
    const sharedWithCredentials = plan.policy.shared && identityOf(http.source, http.requestContext, http.headers, this.#credentialHeaders).length > 0;
    const decision = decideStorage(http, response, plan.policy, { sharedWithCredentials, validated: validators !== undefined });
    // A tag that cannot be stored could not invalidate the response: it is not stored at all.
    const badTag = tags.map(tagProblem).find((problem) => problem !== undefined) ?? (plan.tags.length + tags.length > MAX_TAGS_PER_VALUE ? `more than ${MAX_TAGS_PER_VALUE} tags` : undefined);
    if (!decision.store || badTag !== undefined) {
      this.#cache.logger.debug('dynamo-cache: response not stored', { key: plan.key, reason: decision.store ? `Cache-Tag or Surrogate-Key: ${badTag}` : decision.reason });
      await this.#save(plan, undefined);
      return { stored: false, ttlSeconds: 0 };
    }
    const stored = await this.#save(plan, this.#record(response, decision, plan.policy.revalidate ? validators : undefined, tags), tags);
    return { stored, ttlSeconds: decision.ttlSeconds };
  }

  /** The record of a response to store: as clients get it (the removed fields aside), with what revalidation needs. */
  #record(response: HttpResponse, decision: StorageDecision & { store: true }, validators: Validators | undefined, tags: readonly string[]): StoredHttpResponse {
    const headers = headersOf(response);
    const targeted = Object.fromEntries(this.#removedFields.filter((name) => !TAG_HEADERS.includes(name) && headers[name] !== undefined).map((name) => [name, headers[name]!]));
    return {
      v: 1,
      kind: 'http',
      response: this.#forClient(storableCopy(response)),
      storedAt: Date.now(),
      age: ageOf(headers.age) ?? 0,
      ttlSeconds: decision.ttlSeconds,
      ...(decision.mustRevalidate ? { mustRevalidate: true } : {}),
      ...(decision.noCache ? { noCache: true } : {}),
      ...(validators === undefined ? {} : { validators }),
      ...(Object.keys(targeted).length === 0 ? {} : { targeted }),
      ...(tags.length === 0 ? {} : { tags }),
    };
  }

  /** `response` as a client gets it: without the targeted fields meant for this cache alone, nor (by default) the tag fields. */
  #forClient(response: HttpResponse): HttpResponse {
    return this.#removedFields.length === 0 ? response : withoutHeaders(response, this.#removedFields);
  }

  /**
   * The handler failed (threw, or answered `status`): ends the turn and returns the stale result to answer
   * with (within `staleIfErrorSeconds`, unless it must be revalidated), or `undefined` to let the failure through.
   */
  async recover(plan: MemoPlan, error: unknown, status?: number): Promise<unknown> {
    if (plan.kind === 'invalidate') return undefined;
    const turn = plan.turn;
    plan.turn = undefined;
    if (turn === undefined) return undefined;
    const fallback = await turn.fail(error);
    return fallback === undefined ? undefined : this.#answer(plan, fallback.value, 'stale', status ?? null);
  }

  async #invalidate(plan: InvalidationPlan, result: unknown): Promise<void> {
    const status = toHttpResponse(result, plan.http)?.statusCode;
    if (status === undefined || status < 200 || status >= 400) return;
    const modes = (Object.entries(plan.targets) as Array<[InvalidationMode, readonly string[]]>).filter(([, tags]) => tags.length > 0);
    const recorded = await Promise.all(modes.map(([mode, tags]) => this.#cache.invalidateTags(tags, { mode, ...plan.call })));
    if (!recorded.every(Boolean)) {
      this.#cache.logger.warn('dynamo-cache: invalidation not recorded; other environments may answer stored responses until they expire', { key: plan.key });
    }
  }

  /**
   * Ends the turn: stores `stored` (or nothing) with the plan's tags and `moreTags`, and gives the lease back;
   * without a turn, a plain `set`. Resolves whether DynamoDB stored it.
   */
  async #save(plan: LookupPlan, stored: StoredResult | undefined, moreTags: readonly string[] = []): Promise<boolean> {
    const turn = plan.turn;
    plan.turn = undefined;
    try {
      if (stored === undefined) {
        await turn?.abandon();
        return false;
      }
      const tags = moreTags.length === 0 ? plan.tags : [...plan.tags, ...moreTags];
      const options = { ...lifetimeOf(stored, plan.policy), ...(tags.length === 0 ? {} : { tags }) };
      // A turn's write is bounded by the deadline its `acquire` was given; a plain `set` by the plan's.
      return await (turn === undefined ? this.#cache.set(plan.key, stored, { ...options, ...plan.call }) : turn.fulfil(stored, options));
    } catch (error) {
      if (!(error instanceof InvalidValueError)) throw error;
      await turn?.abandon().catch(() => undefined);
      this.#cache.logger.warn('dynamo-cache: handler result cannot be stored; not memoized', { key: plan.key, errorMessage: error.message });
      return false;
    }
  }

  /**
   * A stored result as the response to send (noting its `source` in the plan), or `undefined` (run the
   * handler) when its shape is wrong or it is stale and must not be served so (`must-revalidate`,
   * `no-cache`). `failedStatus` is set when it stands in for a failed handler (`null` for a thrown error).
   */
  #answer(plan: LookupPlan, stored: StoredResult | undefined, source: ResponseSource, failedStatus?: number | null): unknown {
    if (!isStoredResult(stored, plan.http !== undefined)) {
      this.#cache.logger.warn('dynamo-cache: stored response has an unexpected shape; running the handler', { key: plan.key });
      return undefined;
    }
    if (stored.kind === 'value') {
      plan.source = source;
      return stored.value;
    }
    const { ageSeconds, ttlSeconds, stale } = timingOf(stored, Date.now());
    if (stale && (stored.mustRevalidate === true || stored.noCache === true)) return undefined;
    plan.source = source;
    const response = plan.head ? withoutContent(stored.response) : stored.response;
    const outcome: CacheOutcome =
      failedStatus === undefined ? { kind: 'hit', ageSeconds, ttlSeconds } : { kind: 'stale-on-error', ageSeconds, ttlSeconds, status: failedStatus ?? undefined };
    this.#status.write(response, outcome);
    return this.#conditional(plan.http!, response);
  }

  #refreshOptions(policy: RoutePolicy): GetOrSetOptions {
    return { ttlSeconds: policy.ttlSeconds, staleWhileRevalidateSeconds: policy.staleWhileRevalidateSeconds, staleIfErrorSeconds: policy.staleIfErrorSeconds };
  }

  #conditional(request: HttpRequestView, response: HttpResponse): HttpResponse {
    return answersNotModified(request.headers, response) ? notModified(response) : response;
  }

  /** The custom key's result for `event`, or `undefined` (not memoized) when it has none or fails. */
  #customKey(event: unknown, context: Context): unknown {
    return this.#key?.evaluate(event, context, this.#cache.logger);
  }
}

/** The source of a cache answer, as the middleware names it. */
function responseSource(source: CacheSource): ResponseSource {
  return source === 'memory' || source === 'stale' ? source : 'dynamodb';
}

/** Whether `value` is a stored response that can be revalidated: one with the handler's validators. */
function isRevalidatable(value: unknown): value is StoredHttpResponse {
  return isStoredResult(value, true) && value.kind === 'http' && value.validators !== undefined;
}

/** The stored response with the targeted fields clients do not get put back: the whole response, to update from a 304. */
function withTargetedFields(stored: StoredHttpResponse): HttpResponse {
  const response = structuredClone(stored.response);
  for (const [name, value] of Object.entries(stored.targeted ?? {})) setHeader(response, name, value);
  return response;
}

/**
 * How long the cache keeps a record: fresh for its freshness; then usable stale within the route's windows,
 * unless it must never be served stale; and, when it can be revalidated, the route's `ttlSeconds` more, so
 * that a handler can still answer 304 for it (the read-time windows stay the route's: see `acquire`).
 */
function lifetimeOf(stored: StoredResult, policy: RoutePolicy): { ttlSeconds: number; staleWhileRevalidateSeconds: number; staleIfErrorSeconds: number } {
  if (stored.kind === 'value') return { ttlSeconds: policy.ttlSeconds, staleWhileRevalidateSeconds: policy.staleWhileRevalidateSeconds, staleIfErrorSeconds: policy.staleIfErrorSeconds };
  const servableStale = stored.mustRevalidate !== true && stored.noCache !== true;
  const keptForRevalidation = stored.validators === undefined ? 0 : policy.ttlSeconds;
  return {
    ttlSeconds: stored.ttlSeconds,
    staleWhileRevalidateSeconds: servableStale ? policy.staleWhileRevalidateSeconds : 0,
    staleIfErrorSeconds: Math.max(servableStale ? policy.staleIfErrorSeconds : 0, keptForRevalidation),
  };
}

function routePolicy(routeKey: string, route: RouteOptions | false, base: RoutePolicy): RoutePolicy | false {
  if (route === false) return false;
  if (typeof route !== 'object' || route === null) throw new InvalidOptionsError(`response.routes["${routeKey}"] must be an object or false`);
  assertKnownOptions(`response.routes["${routeKey}"]`, route, ROUTE_OPTION_NAMES);
  const name = (option: string) => `response.routes["${routeKey}"].${option}`;
  const vary = route.vary === undefined ? base.varyNames : headerList(name('vary'), route.vary);
  const pattern = parseRouteKey(routeKey, 'response.routes key');
  return {
    ...base,
    pattern,
    tags: route.tags === undefined ? base.tags : compileTags(route.tags, pattern.params, name('tags')),
    ttlSeconds: route.ttlSeconds === undefined ? base.ttlSeconds : finiteNumber(name('ttlSeconds'), route.ttlSeconds),
    shared: route.shared === undefined ? base.shared : booleanOption(name('shared'), route.shared),
    vary: new Set(vary),
    varyNames: vary,
    staleWhileRevalidateSeconds:
      route.staleWhileRevalidateSeconds === undefined ? base.staleWhileRevalidateSeconds : nonNegativeNumber(name('staleWhileRevalidateSeconds'), route.staleWhileRevalidateSeconds),
    staleIfErrorSeconds: route.staleIfErrorSeconds === undefined ? base.staleIfErrorSeconds : nonNegativeNumber(name('staleIfErrorSeconds'), route.staleIfErrorSeconds),
    revalidate: route.revalidate === undefined ? base.revalidate : booleanOption(name('revalidate'), route.revalidate),
  };
}

function statusCodes(codes: unknown): number[] {
  if (!Array.isArray(codes) || codes.some((code) => !Number.isInteger(code) || code < 100 || code > 599)) {
    throw new InvalidOptionsError('response.statusCodes must be an array of HTTP status codes');
  }
  // The key has no Range: a 206 for one range would answer a request for another (RFC 9111 3.3-3.4).
  if (codes.includes(206)) throw new InvalidOptionsError('response.statusCodes cannot include 206: a partial response is not memoized');
  return codes;
}

/** Header names, lower case, without repeats, sorted (the order they take in the key). */
function headerList(name: string, headers: unknown): string[] {
  return fieldList(name, headers).sort();
}

/** Header names, lower case, without repeats, in the order given (a target list's order is its priority). */
function fieldList(name: string, headers: unknown): string[] {
  if (!Array.isArray(headers) || headers.some((h) => typeof h !== 'string' || !TOKEN.test(h))) {
    throw new InvalidOptionsError(`${name} must be an array of header names`);
  }
  return [...new Set(headers.map((h: string) => h.toLowerCase()))];
}
