import type middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { DynamoCache } from '../cache.ts';
import { InvalidOptionsError } from '../errors.ts';
import { MEMORY_TIER_DEFAULTS } from '../memory-tier.ts';
import type { DynamoCacheOptions } from '../options.ts';
import { ResponseMemo, type MemoPlan, type ResponseMemoOptions } from './response-memo.ts';

/** Options of the `dynamoCache()` middleware. */
export interface DynamoCacheMiddlewareOptions<TContextKey extends string = 'cache'> extends DynamoCacheOptions {
  /** An existing cache to use; the `DynamoCacheOptions` are then ignored. Default: a cache built from them. */
  cache?: DynamoCache | undefined;
  /** Name of the `context` property that holds the cache. Default `'cache'`. */
  contextKey?: TContextKey | undefined;
  /** Response memoization, or `false`/absent to only put the cache in `context`. */
  response?: ResponseMemoOptions | false | undefined;
}

/** The Lambda context as handlers behind `dynamoCache()` see it: with the cache under `TContextKey`. */
export type DynamoCacheContext<TContextKey extends string = 'cache'> = Context & { [K in TContextKey]: DynamoCache };

const defaults = {
  contextKey: 'cache',
  response: false,
} as const;

/** Where the middleware keeps its per-request plan (and fetch turn): `request.internal` is per request, the factory is not. */
const INTERNAL_PLAN = 'dynamoCachePlan';

function planOf(request: middy.Request): MemoPlan | undefined {
  return (request.internal as Record<string, unknown>)[INTERNAL_PLAN] as MemoPlan | undefined;
}

/**
 * Middy middleware: puts a `DynamoCache` in `context.cache` and, with `response`, memoizes responses.
 *
 * Register it first (outermost): its `before` then runs first, so a hit returns before any other middleware
 * or the handler runs, and its `after` runs last, so the stored response is the fully serialized one.
 *
 * The cache is created once, when the factory is called, so its memory tier lives as long as the execution
 * environment. Per-request state lives in `request.internal`, so concurrent invocations never mix.
 *
 * @example
 * export const handler = middy(baseHandler).use(dynamoCache({ tableName: 'app-cache', response: { ttlSeconds: 60 } }));
 * @throws InvalidOptionsError for bad options (at factory time, not per request).
 */
export function dynamoCache<TContextKey extends string = 'cache'>(
  opts: DynamoCacheMiddlewareOptions<TContextKey> = {},
): middy.MiddlewareObj<unknown, any, Error, DynamoCacheContext<TContextKey>> {
  // An option given as `undefined` takes its default too (options accept an explicit undefined).
  const options = { ...defaults, ...opts, contextKey: opts.contextKey ?? defaults.contextKey, response: opts.response ?? defaults.response };
  if (typeof options.contextKey !== 'string' || options.contextKey === '') throw new InvalidOptionsError('contextKey must be a non-empty string');
  if (options.cache !== undefined && !(options.cache instanceof DynamoCache)) throw new InvalidOptionsError('cache must be a DynamoCache');
  const { cache: given, contextKey: _contextKey, response: _response, ...cacheOptions } = options;
  const cache = given ?? new DynamoCache(cacheOptions);
  const memo = options.response === false || options.response === undefined ? undefined : new ResponseMemo(cache, options.response, generationRefreshSeconds(options));

  const dynamoCacheMiddlewareBefore = async (request: middy.Request): Promise<unknown> => {
    (request.context as unknown as Record<string, unknown>)[options.contextKey] = cache;
    if (memo === undefined) return undefined;
    const plan = memo.plan(request.event, request.context);
    if (plan === undefined) return undefined;
    (request.internal as Record<string, unknown>)[INTERNAL_PLAN] = plan;
    if (plan.kind === 'invalidate') return undefined;
    try {
      return await memo.lookup(plan); // a value here is Middy's early return: the handler does not run
    } catch (error) {
      cache.logger.warn('dynamo-cache: cached response unusable; running the handler', { key: plan.key, errorMessage: (error as Error).message });
      return undefined;
    }
  };

  const dynamoCacheMiddlewareAfter = async (request: middy.Request): Promise<void> => {
    const plan = planOf(request);
    if (plan === undefined || memo === undefined) return;
    try {
      request.response = await memo.store(plan, request.response);
    } catch (error) {
      // The handler's response stands as it is: caching it is never worth failing the request.
      cache.logger.warn('dynamo-cache: response not memoized', { key: plan.key, errorMessage: (error as Error).message });
    }
  };

  // The handler failed: give the refresh lease back, and answer with a stale response if one is allowed.
  const dynamoCacheMiddlewareOnError = async (request: middy.Request): Promise<unknown> => {
    const plan = planOf(request);
    if (plan === undefined || memo === undefined) return undefined;
    try {
      return await memo.recover(plan, request.error);
    } catch (error) {
      cache.logger.warn('dynamo-cache: could not end the refresh turn', { key: plan.key, errorMessage: (error as Error).message });
      return undefined;
    }
  };

  return {
    before: dynamoCacheMiddlewareBefore,
    ...(memo === undefined ? {} : { after: dynamoCacheMiddlewareAfter, onError: dynamoCacheMiddlewareOnError }),
  } as middy.MiddlewareObj<unknown, any, Error, DynamoCacheContext<TContextKey>>;
}

/**
 * How long an environment trusts a path's invalidation generation: the memory tier's TTL, the bound the
 * cache gives every change made elsewhere; the default one when the tier is off or the cache was passed in.
 */
function generationRefreshSeconds(options: DynamoCacheMiddlewareOptions<string>): number {
  if (options.cache !== undefined || typeof options.memory !== 'object' || options.memory === null) return MEMORY_TIER_DEFAULTS.ttlSeconds;
  return options.memory.ttlSeconds ?? MEMORY_TIER_DEFAULTS.ttlSeconds;
}
