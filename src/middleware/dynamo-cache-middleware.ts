import type middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { DynamoCache } from '../cache.ts';
import type { CallOptions, DeadlineSource } from '../resilience/call-options.ts';
import { InvalidOptionsError } from '../errors.ts';
import { powertoolsCommons } from '../on-demand.ts';
import { traced, tracingOn } from '../observability/tracing.ts';
import { assertKnownOptions } from '../known-options.ts';
import { CACHE_OPTION_NAMES, type DynamoCacheOptions } from '../options.ts';
import { ResponseMemo, type MemoPlan, type ResponseMemoOptions, type ResponseResult } from './response-memo.ts';

export { invalidateRoutes } from './route-tags.ts';

/** Options of the `dynamoCache()` middleware. */
export interface DynamoCacheMiddlewareOptions<TContextKey extends string = 'cache'> extends DynamoCacheOptions {
  /**
   * An existing cache to use, from this copy of dynamo-cache or another (the CommonJS build, a layer's, a
   * bundle's): it is recognized by a brand, not `instanceof`. The `DynamoCacheOptions` must then be left
   * out (give them to the cache). Default: a cache built from them.
   */
  cache?: DynamoCache | undefined;
  /** Name of the `context` property that holds the cache. Default `'cache'`. */
  contextKey?: TContextKey | undefined;
  /** Response memoization, or `false`/absent to only put the cache in `context`. */
  response?: ResponseMemoOptions | false | undefined;
  /**
   * Called once per memoized request (a GET or HEAD on a memoized route, or a keyed event) when its
   * response is settled: whether it came from the cache, and from where (for a metric, a log field...).
   * On a hit it is called before the Powertools middlewares are cleaned up, so what it adds to their
   * `Metrics` or `Logger` goes out with the invocation. A hook that throws is logged and ignored. Not called
   * for requests that are not memoized, nor when the cache is `disabled`. Default: none.
   */
  onResult?: ((result: ResponseResult, request: middy.Request) => void) | undefined;
}

/** The Lambda context as handlers behind `dynamoCache()` see it: with the cache under `TContextKey`. */
export type DynamoCacheContext<TContextKey extends string = 'cache'> = Context & { [K in TContextKey]: DynamoCache };

/** Option names of the middleware on top of the `DynamoCacheOptions`. */
const MIDDLEWARE_OPTION_NAMES = ['cache', 'contextKey', 'response', 'onResult'] as const satisfies ReadonlyArray<keyof DynamoCacheMiddlewareOptions>;

const defaults = {
  contextKey: 'cache',
  response: false,
} as const;

/** Where the middleware keeps its per-request state: `request.internal` is per request, the factory is not. */
const INTERNAL_STATE = 'dynamoCacheState';

/** What `before` decided for one request, until `after` or `onError` ends it. */
interface RequestState {
  readonly plan: MemoPlan;
  /** Whether a Powertools middleware had run its `before` when this one ran (they are registered first). */
  readonly powertoolsFirst: boolean;
}

/**
 * The `request.internal` keys Powertools' logger, metrics and tracer middlewares set in their `before` for
 * `cleanupMiddlewares` (`TRACER_KEY`, `METRICS_KEY` and `LOGGER_KEY` of `@aws-lambda-powertools/commons`,
 * plain strings, spelled out so the package loads only when an early return needs its clean-up).
 */
const POWERTOOLS_KEYS = ['powertools-for-aws.tracer', 'powertools-for-aws.metrics', 'powertools-for-aws.logger'];
/** Every key `cleanupMiddlewares` acts on: without one of them there is nothing to clean up (and nothing to load). */
const CLEANUP_KEYS = [...POWERTOOLS_KEYS, 'powertools-for-aws.idempotency'];

/** Runs the clean-up of the Powertools middlewares registered before this one, if there are any. */
async function cleanUpPowertools(request: middy.Request): Promise<void> {
  if (CLEANUP_KEYS.some((key) => Object.hasOwn(request.internal, key))) await powertoolsCommons().cleanupMiddlewares(request);
}

const NO_DEADLINE: CallOptions = Object.freeze({});

/**
 * Middy middleware: puts a `DynamoCache` in `context.cache` and, with `response`, memoizes responses.
 *
 * Register it after Powertools' middlewares (`injectLambdaContext`, `logMetrics`, `captureLambdaHandler`)
 * and before the others (error handler, serializers, CORS...). A hit is Middy's early return: the handler
 * and every later middleware are skipped, and this middleware calls Powertools' `cleanupMiddlewares` first,
 * so metrics are flushed, the trace segment closed and logger keys reset as after any invocation. Its `after`
 * runs after the later middlewares' own, so the stored response is the fully serialized one.
 *
 * Every cache call it makes (lookup, lease wait, path-generation read and write, store) is bounded by the
 * invocation's deadline (`context.getRemainingTimeInMillis()`, less `deadlineMarginMs`): a stuck lease holder
 * elsewhere cannot make it outlive the invocation; the handler then runs itself.
 *
 * The cache is created once, when the factory is called, so its memory tier lives as long as the execution
 * environment. Per-request state lives in `request.internal`, so concurrent invocations never mix. With
 * `disabled` (or `DYNAMO_CACHE_DISABLED=true`) every request passes through untouched.
 *
 * @example
 * export const handler = middy(baseHandler)
 *   .use(injectLambdaContext(logger))
 *   .use(logMetrics(metrics))
 *   .use(dynamoCache({ tableName: 'app-cache', metrics, response: { ttlSeconds: 60 } }))
 *   .use(httpErrorHandler());
 * @throws InvalidOptionsError for bad or unknown options (at factory time, not per request).
 */
export function dynamoCache<TContextKey extends string = 'cache'>(
  opts: DynamoCacheMiddlewareOptions<TContextKey> = {},
): middy.MiddlewareObj<unknown, any, Error, DynamoCacheContext<TContextKey>> {
  if (typeof opts !== 'object' || opts === null) throw new InvalidOptionsError('dynamoCache() options must be an object');
  assertKnownOptions('dynamoCache() options', opts, [...CACHE_OPTION_NAMES, ...MIDDLEWARE_OPTION_NAMES]);
  // An option given as `undefined` takes its default too (options accept an explicit undefined).
  const options = { ...defaults, ...opts, contextKey: opts.contextKey ?? defaults.contextKey, response: opts.response ?? defaults.response };
  if (typeof options.contextKey !== 'string' || options.contextKey === '') throw new InvalidOptionsError('contextKey must be a non-empty string');
  if (options.cache !== undefined && !DynamoCache.isDynamoCache(options.cache)) throw new InvalidOptionsError('cache must be a DynamoCache');
  if (options.onResult !== undefined && typeof options.onResult !== 'function') throw new InvalidOptionsError('onResult must be a function');
  const { cache: given, contextKey: _contextKey, response: _response, onResult, ...cacheOptions } = options;
  if (given !== undefined) {
    const ignored = Object.entries(cacheOptions).find(([, value]) => value !== undefined)?.[0];
    if (ignored !== undefined) throw new InvalidOptionsError(`${ignored} is an option of the DynamoCache: with cache, give it to new DynamoCache() instead`);
  }
  const cache = given ?? new DynamoCache(cacheOptions);
  // Built even when the cache is disabled, so that bad response options fail in unit tests too.
  const configured = options.response === false ? undefined : new ResponseMemo(cache, options.response);
  // The kill switch: every request passes through untouched; only `context.cache` (a cache that always misses) is set.
  const memo = cache.disabled ? undefined : configured;
  let orderWarned = false;

  const report = (plan: MemoPlan, request: middy.Request): void => {
    if (onResult === undefined || plan.kind !== 'lookup') return;
    const source = plan.source ?? 'handler';
    try {
      onResult({ key: plan.key, source, fromCache: source !== 'handler' && source !== 'revalidated' }, request);
    } catch (error) {
      cache.logger.warn('dynamo-cache: onResult threw; ignored', { key: plan.key, errorMessage: (error as Error)?.message });
    }
  };

  const dynamoCacheMiddlewareBefore = async (request: middy.Request): Promise<unknown> => {
    (request.context as unknown as Record<string, unknown>)[options.contextKey] = cache;
    if (memo === undefined) return undefined;
    const plan = memo.plan(request.event, request.context, callOptionsOf(request.context));
    if (plan === undefined) return undefined;
    const state: RequestState = { plan, powertoolsFirst: powertoolsRan(request) };
    (request.internal as Record<string, unknown>)[INTERNAL_STATE] = state;
    if (plan.kind === 'invalidate') return undefined;
    let found: unknown;
    try {
      // A span when tracing is on: where the response came from ('handler': it runs). Off, a hit makes no closure.
      found = tracingOn()
        ? await traced('middleware lookup', cache, async (source) => {
            const answer = await memo.lookup(plan);
            source(plan.source ?? 'handler');
            return answer;
          })
        : await memo.lookup(plan);
    } catch (error) {
      cache.logger.warn('dynamo-cache: cached response unusable; running the handler', { key: plan.key, errorMessage: (error as Error).message });
      return undefined;
    }
    if (found === undefined) {
      request.event = memo.handlerEvent(plan, request.event); // with the stored response's validators when revalidating
      return undefined;
    }
    takeState(request);
    report(plan, request);
    // A value here is Middy's early return: no `after` runs, so Powertools middlewares registered before this
    // one (metrics, tracer, logger) do their end-of-invocation work now, as Powertools idempotency has them do.
    await cleanUpPowertools(request);
    return found;
  };

  const dynamoCacheMiddlewareAfter = async (request: middy.Request): Promise<void> => {
    const state = takeState(request);
    if (state === undefined) return;
    if (!orderWarned && !state.powertoolsFirst && powertoolsRan(request)) {
      orderWarned = true;
      cache.logger.warn(
        'dynamo-cache: a Powertools middleware is registered after dynamoCache; on a hit it does not run (no metrics flush, ColdStart metric, request id or trace segment). Register Powertools middlewares first.',
      );
    }
    try {
      request.response = await memo!.store(state.plan, request.response);
    } catch (error) {
      // The handler's response stands as it is: caching it is never worth failing the request.
      cache.logger.warn('dynamo-cache: response not memoized', { key: state.plan.key, errorMessage: (error as Error).message });
    }
    report(state.plan, request);
  };

  // The handler failed: give the refresh lease back, and answer with a stale response if one is allowed.
  const dynamoCacheMiddlewareOnError = async (request: middy.Request): Promise<unknown> => {
    const state = takeState(request);
    if (state === undefined) return undefined;
    let stale: unknown;
    try {
      stale = await memo!.recover(state.plan, request.error);
    } catch (error) {
      cache.logger.warn('dynamo-cache: could not end the refresh turn', { key: state.plan.key, errorMessage: (error as Error).message });
    }
    report(state.plan, request);
    if (stale === undefined) return undefined;
    // Answering ends the onError chain: the Powertools middlewares' own onError would not run.
    await cleanUpPowertools(request);
    return stale;
  };

  return {
    before: dynamoCacheMiddlewareBefore,
    ...(memo !== undefined ? { after: dynamoCacheMiddlewareAfter, onError: dynamoCacheMiddlewareOnError } : {}),
  } as middy.MiddlewareObj<unknown, any, Error, DynamoCacheContext<TContextKey>>;
}

/** The request's state, removed from `request.internal`: a request's memoization ends once. */
function takeState(request: middy.Request): RequestState | undefined {
  const internal = request.internal as Record<string, unknown>;
  const state = internal[INTERNAL_STATE] as RequestState | undefined;
  if (state !== undefined) delete internal[INTERNAL_STATE];
  return state;
}

function powertoolsRan(request: middy.Request): boolean {
  return POWERTOOLS_KEYS.some((key) => Object.hasOwn(request.internal, key));
}

/**
 * What bounds the request's cache calls: the invocation's deadline, from the Lambda context (Middy's durable
 * mode passes it as `lambdaContext`), or none outside Lambda.
 */
function callOptionsOf(context: unknown): CallOptions {
  if (hasDeadline(context)) return { deadline: context };
  const inner = (context as { lambdaContext?: unknown } | undefined)?.lambdaContext;
  return hasDeadline(inner) ? { deadline: inner } : NO_DEADLINE;
}

function hasDeadline(context: unknown): context is DeadlineSource {
  return typeof (context as Partial<DeadlineSource> | null | undefined)?.getRemainingTimeInMillis === 'function';
}
