/**
 * dynamo-cache: a two-tier cache for AWS Lambda (in-memory LRU + DynamoDB) that never breaks its caller.
 * @packageDocumentation
 */
export {
  DynamoCache,
  type Acquisition,
  type CachedAnswer,
  type CacheItemInfo,
  type CacheStatsSnapshot,
  type FetchTurn,
  type GetOptions,
  type GetOrSetManyOptions,
  type GetOrSetOptions,
  type InvalidateOptions,
  type InvalidateTagsOptions,
  type ManyOptions,
  type SetOptions,
  type WrapOptions,
} from './cache.ts';
export type { CacheResult, CacheSource, CallOptions, DeadlineSource, ResultOptions } from './resilience/call-options.ts';
export type { CompressionAlgorithm, CompressionOptions, CompressionSaving } from './codec/compression.ts';
export type { EncryptionOptions, KeyMaterial, KeySource } from './codec/encryption.ts';
export { InvalidKeyError, InvalidOptionsError, InvalidValueError, LeaseWaitTimeoutError } from './errors.ts';
export type { HashKeysOptions } from './storage/keys.ts';
export { shouldRefreshEarly } from './refresh/freshness.ts';
export type { FetchContext, FetchManyContext, PreviousValue, StaleWindows, TtlSeconds } from './refresh/fetch-context.ts';
export type { FetchMany, FetchedValues } from './refresh/batch-refresh.ts';
export { expiresAtSeconds, hasExpired } from './refresh/expiry.ts';
export type { CacheLogger } from './observability/logger.ts';
export type { MemoryTierOptions } from './storage/memory-tier.ts';
export { DEFAULT_MAX_VALUE_BYTES, DEFAULT_TIMEOUT_MS, DEFAULT_TTL_SECONDS, LEASE_DEFAULTS, NAMESPACE_ENV, TABLE_ENV, type DynamoCacheOptions, type EarlyRefreshOptions, type LeaseOptions } from './options.ts';
export { DEFAULT_ATTRIBUTE_NAMES, type AttributeNames } from './storage/item.ts';
export type { BreakerOptions, CircuitStatus, RetryOptions } from './resilience/dynamo-guard.ts';
export type { CacheMetrics, CacheStats } from './observability/stats.ts';
export { dynamoCache, invalidateRoutes, type DynamoCacheContext, type DynamoCacheMiddlewareOptions } from './middleware/dynamo-cache-middleware.ts';
export type { InvalidationMode } from './invalidation/tag-states.ts';
export type { InvalidationRule } from './middleware/invalidation-rules.ts';
export type { TagsOption } from './middleware/route-tags.ts';
export type { HttpEventSource, HttpRequestView } from './middleware/http-event.ts';
export type { MemoKey } from './middleware/custom-key.ts';
export type { ResponseMemoOptions, ResponseResult, ResponseSource, RouteOptions } from './middleware/response-memo.ts';
export {
  awsCacheStatusOf,
  cacheAwsClient,
  type AwsCacheStatus,
  type AwsClientLike,
  type CacheAwsClientOptions,
  type CachedAwsClient,
  type CachedCommandOptions,
} from './aws-clients/cache-aws-client.ts';
export {
  CLIENT_CREDENTIALS_DEFAULTS,
  MAX_EXPIRES_IN_SECONDS,
  clientCredentialsToken,
  type ClientCredentialsTokenOptions,
  type TokenProvider,
  type TokenRequestOptions,
} from './oauth/client-credentials-token.ts';
export { TokenEndpointError, type TokenEndpointErrorDetails } from './oauth/errors.ts';
export type { StatusHeaderOptions } from './middleware/status-headers.ts';
