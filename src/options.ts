import { DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import { COMPRESSION_DEFAULTS, type CompressionOptions } from './codec/compression.ts';
import { Keyring, type EncryptionOptions } from './codec/encryption.ts';
import { InvalidOptionsError } from './errors.ts';
import { assertNamespace, type HashKeysOptions } from './storage/keys.ts';
import { assertKnownOptions } from './known-options.ts';
import { defaultLogger, type CacheLogger } from './observability/logger.ts';
import { MEMORY_TIER_DEFAULTS, type MemoryTierOptions } from './storage/memory-tier.ts';
import { DEFAULT_ATTRIBUTE_NAMES, type AttributeNames } from './storage/item.ts';
import { BREAKER_DEFAULTS, REQUEST_TIMEOUT_SLACK_MS, RETRY_DEFAULTS, type BreakerOptions, type RetryOptions } from './resilience/dynamo-guard.ts';
import type { CacheMetrics } from './observability/stats.ts';

/** Environment variable read for the table name when `tableName` is not given. */
export const TABLE_ENV = 'DYNAMO_CACHE_TABLE';
/** Environment variable read for the namespace when `namespace` is not given. */
export const NAMESPACE_ENV = 'DYNAMO_CACHE_NAMESPACE';
/** Environment variable that turns every cache off (`true` or `1`) when `disabled` is not given: for unit tests and local runs. */
export const DISABLED_ENV = 'DYNAMO_CACHE_DISABLED';

/** Options of `new DynamoCache(options)`. Every one is optional; defaults are listed with each. */
export interface DynamoCacheOptions {
  /** DynamoDB table. Default: the `DYNAMO_CACHE_TABLE` environment variable; one of the two is required. */
  tableName?: string | undefined;
  /** A `DynamoDBClient` to reuse. Its own retry settings apply inside the time budget. Default: a new client. */
  client?: DynamoDBClient | undefined;
  /**
   * Settings of the client created when `client` is not given (region, endpoint, credentials...).
   * `maxAttempts` defaults to `1` there, because the cache retries itself within its time budget.
   * The SDK's own environment variables apply as usual (`AWS_REGION`, `AWS_ENDPOINT_URL_DYNAMODB`).
   */
  clientConfig?: DynamoDBClientConfig | undefined;
  /**
   * Prefix of every key (`<namespace>:<key>`), so many functions can share one table without seeing each
   * other's keys; IAM can confine a function to its prefix with `dynamodb:LeadingKeys`. 1-128 characters
   * of `A-Z a-z 0-9 _ . -`. Default: the `DYNAMO_CACHE_NAMESPACE` environment variable, else none (keys
   * are stored as given, as the original service stores them).
   */
  namespace?: string | undefined;
  /** TTL of values stored without one, in seconds. Default `3300` (55 minutes, as the original). */
  defaultTtlSeconds?: number | undefined;
  /** The in-memory tier in front of DynamoDB, or `false` for none. Default `{ maxEntries: 1000, maxBytes: 16 MiB, ttlSeconds: 30 }`. */
  memory?: false | MemoryTierOptions | undefined;
  /** Names of the key, value and expiry attributes. Default `{ key: 'id', value: 'cached_value', expiresAt: 'expires_at' }`. */
  attributes?: Partial<AttributeNames> | undefined;
  /** Where warnings about absorbed failures go: a Powertools `Logger` or any object with the same methods. Default: a new Powertools `Logger`. */
  logger?: CacheLogger | undefined;
  /** Strongly consistent reads (twice the read cost). Default `false`. */
  consistentRead?: boolean | undefined;
  /**
   * Time budget of one cache operation in ms, retries included. When it runs out the request is aborted
   * and the operation becomes a miss (or `set` resolves `false`). Default `300`.
   */
  timeoutMs?: number | undefined;
  /** Retries of throttling, 5xx and network errors inside the budget. Default `{ maxAttempts: 3, baseDelayMs: 20, maxDelayMs: 100 }`. */
  retry?: RetryOptions | undefined;
  /**
   * Circuit breaker around DynamoDB, or `false` for none: after `consecutiveFailures` failed operations
   * DynamoDB is skipped (the memory tier keeps serving) for `halfOpenAfterMs`, then one probe decides.
   * Default `{ consecutiveFailures: 5, halfOpenAfterMs: 5000 }`.
   */
  breaker?: false | BreakerOptions | undefined;
  /**
   * Default of `staleWhileRevalidateSeconds` for `set`/`getOrSet`: how long after its TTL a value may still
   * be served while one caller refreshes it. Default `0`.
   */
  staleWhileRevalidateSeconds?: number | undefined;
  /** Default of `staleIfErrorSeconds`: how long after its TTL a value may be served when the refresh fails. Default `0`. */
  staleIfErrorSeconds?: number | undefined;
  /** Default of `negativeTtlSeconds`: how long `getOrSet` caches a fetcher's `undefined` ("not found"). Default `0` (not cached). */
  negativeTtlSeconds?: number | undefined;
  /**
   * Cross-environment refresh lease for `getOrSet`/`wrap`/the middleware, or `false`: on a miss one caller
   * in the whole fleet wins the lease (one conditional write) and fetches; the others wait for its value or
   * answer from the stale one. Default `{ ttlMs: 3000, waitMs: 5000, pollMs: 20, maxPollMs: 250, onWaitTimeout: 'fetch' }`.
   */
  lease?: false | LeaseOptions | undefined;
  /** Probabilistic early refresh (XFetch) of fresh values, or `false`. `true` means `{ beta: 1 }`. Default `false`. */
  earlyRefresh?: boolean | EarlyRefreshOptions | undefined;
  /**
   * Compression of stored values, or `false`. Default `{ algorithm: 'br', thresholdBytes: 512, strings: false }`:
   * JSON and binary values of 512 bytes or more are compressed with brotli when that makes them smaller.
   * With `encryption` the default is `false`: compressing before encrypting lets the stored size reveal
   * whether attacker-chosen data in a value matches a secret in it (the CRIME/BREACH pattern). Pass
   * compression options explicitly to compress encrypted values anyway, for values that never mix secrets
   * with data others choose.
   */
  compression?: false | CompressionOptions | undefined;
  /** Client-side AES-256-GCM encryption of stored values, with rotating keys. Default: none. */
  encryption?: EncryptionOptions | undefined;
  /** Store only an HMAC of each key, never the key itself. Default: none (keys are stored as given). */
  hashKeys?: HashKeysOptions | undefined;
  /**
   * Largest stored (compressed, encrypted) value, in bytes. A value above DynamoDB's 400 KB item limit is
   * split into chunk items; one above this is not cached (`set` resolves `false`). Default `6 MiB`
   * (Lambda's response size limit).
   */
  maxValueBytes?: number | undefined;
  /** Time budget of reading or writing a large value's chunks, in ms. Default `3000`. */
  largeValueTimeoutMs?: number | undefined;
  /**
   * Largest stored (compressed, encrypted) value a refresh (`getOrSet`, `wrap`, `acquire`, the middleware: the
   * values a fleet shares) keeps in one item, in bytes; a larger one is spread over piece items of one read unit
   * each (4 KB), each its own partition, behind a small head item. A hot value's readers then share the partitions
   * of its pieces instead of all reading one, and a refresh's waiters poll the head. It costs one more round trip
   * to read or write such a value. `set` keeps a value in one item up to DynamoDB's item limit whatever this is.
   * `false`: never spread. Default `16384` (16 KiB).
   */
  spreadValueBytes?: number | false | undefined;
  /**
   * Time kept free for the caller before a call's `deadline` (a Lambda context's remaining time, or an epoch
   * ms), in ms: the cache's own work (DynamoDB requests, waiting on another caller's refresh) stops this long
   * before the deadline, so the fetcher or the handler still has time to run. Default `500`.
   */
  deadlineMarginMs?: number | undefined;
  /**
   * Turns the cache off: every read misses, nothing is stored, DynamoDB is never called, the middleware
   * passes every request through, and `tableName` is not required. For unit tests and local runs. Default:
   * `true` when the `DYNAMO_CACHE_DISABLED` environment variable is `true` or `1`, else `false`.
   */
  disabled?: boolean | undefined;
  /**
   * A Powertools `Metrics` instance (or anything with its `addMetric(name, unit, value)`): each hit, miss,
   * stale answer, absorbed error, lease wait and fetch adds one data point, flushed with the invocation's
   * other metrics. No dimension is added (the cardinality stays the instance's own); keys never appear.
   * Default: none.
   */
  metrics?: CacheMetrics | undefined;
  /**
   * Keys to read into the memory tier as soon as the cache is created (during INIT, when the cache is built
   * at module load), so the first invocations hit memory. A failure is logged, never thrown; `cache.ready`
   * resolves when it is over. Default: none.
   */
  prefetch?: readonly string[] | undefined;
}

/** Names of every `DynamoCacheOptions` property, for the unknown-option check. */
export const CACHE_OPTION_NAMES = [
  'tableName', 'client', 'clientConfig', 'namespace', 'defaultTtlSeconds', 'memory', 'attributes', 'logger', 'consistentRead', 'timeoutMs',
  'retry', 'breaker', 'staleWhileRevalidateSeconds', 'staleIfErrorSeconds', 'negativeTtlSeconds', 'lease', 'earlyRefresh', 'compression',
  'encryption', 'hashKeys', 'maxValueBytes', 'largeValueTimeoutMs', 'spreadValueBytes', 'deadlineMarginMs', 'disabled', 'metrics', 'prefetch',
] as const satisfies ReadonlyArray<keyof DynamoCacheOptions>;

/** The refresh lease (see `DynamoCacheOptions.lease`). */
export interface LeaseOptions {
  /** How long a lease holds; a holder that dies is replaced after it, in ms. Default `3000`. */
  ttlMs?: number | undefined;
  /** Longest a caller waits for another caller's refresh, in ms; then `onWaitTimeout` applies. Default `5000`. */
  waitMs?: number | undefined;
  /** First pause between checks while waiting, in ms; it doubles (with jitter) up to `maxPollMs`. Default `20`. */
  pollMs?: number | undefined;
  /** Longest pause between checks while waiting, in ms. Default `250`. */
  maxPollMs?: number;
  /**
   * When waiting runs out (`waitMs`, or the call's deadline less `deadlineMarginMs`): `'fetch'` calls the
   * fetcher anyway (liveness; or answers a stale value within `staleIfErrorSeconds` when the deadline cut the
   * wait), `'throw'` rejects with `LeaseWaitTimeoutError`. Default `'fetch'`.
   */
  onWaitTimeout?: 'fetch' | 'throw';
}

/** Probabilistic early refresh (see `shouldRefreshEarly`). */
export interface EarlyRefreshOptions {
  /** How early to refresh: `1` is the paper's optimum, larger refreshes earlier. Default `1`. */
  beta?: number | undefined;
}

/** Defaults of {@link LeaseOptions}. */
export const LEASE_DEFAULTS: Required<LeaseOptions> = { ttlMs: 3000, waitMs: 5000, pollMs: 20, maxPollMs: 250, onWaitTimeout: 'fetch' };

/**
 * Not part of the public API (not exported from the package): lowers the size above which values are
 * chunked, so that tests can cross the chunking threshold thousands of times with small values. It can only
 * lower it: DynamoDB's 400 KB item limit is the ceiling.
 * @internal
 */
export const INLINE_LIMIT_FOR_TESTS = Symbol('dynamo-cache.inline-limit');

/** Largest stored value kept in the item itself; above it values are split into chunk items. */
export const INLINE_VALUE_BYTES = 390_000;

/** Options with every default applied and every value checked. */
export interface ResolvedOptions {
  readonly tableName: string;
  readonly client: DynamoDBClient;
  /** How a request past its budget is cancelled (see `GuardSettings.cancel`). */
  readonly cancel: 'signal' | 'request-timeout';
  /** The client's own timeout of a request sent without options (see `GuardSettings.requestTimeoutMs`); `undefined` with `signal`. */
  readonly requestTimeoutMs: number | undefined;
  readonly namespace: string;
  readonly defaultTtlSeconds: number;
  readonly memory: Required<MemoryTierOptions> | false;
  readonly attributes: AttributeNames;
  readonly logger: CacheLogger;
  readonly consistentRead: boolean;
  readonly timeoutMs: number;
  readonly retry: Required<RetryOptions>;
  readonly breaker: Required<BreakerOptions> | false;
  readonly staleWhileRevalidateSeconds: number;
  readonly staleIfErrorSeconds: number;
  readonly negativeTtlSeconds: number;
  readonly lease: Required<LeaseOptions> | false;
  readonly earlyRefresh: Required<EarlyRefreshOptions> | false;
  readonly compression: Required<CompressionOptions> | false;
  readonly keyring: Keyring | undefined;
  readonly hashKeys: HashKeysOptions | undefined;
  readonly maxValueBytes: number;
  readonly largeValueTimeoutMs: number;
  readonly inlineValueBytes: number;
  readonly spreadValueBytes: number | false;
  readonly deadlineMarginMs: number;
  readonly disabled: boolean;
  readonly metrics: CacheMetrics | undefined;
  readonly prefetch: readonly string[];
}

/** The default of `maxValueBytes`: Lambda's 6 MB response limit. */
export const DEFAULT_MAX_VALUE_BYTES = 6 * 1024 * 1024;

/** The default of `spreadValueBytes`. */
export const DEFAULT_SPREAD_VALUE_BYTES = 16 * 1024;

/** The default of `timeoutMs`. */
export const DEFAULT_TIMEOUT_MS = 300;
/** The default of `defaultTtlSeconds`. */
export const DEFAULT_TTL_SECONDS = 3300;

/** Applies defaults and checks every option; throws `InvalidOptionsError` naming the first bad one. */
export function resolveOptions(options: DynamoCacheOptions = {}): ResolvedOptions {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionsError('options must be an object');
  assertKnownOptions('the DynamoCache options', options, CACHE_OPTION_NAMES);
  const disabled = booleanOption('disabled', options.disabled ?? ['true', '1'].includes((process.env[DISABLED_ENV] ?? '').toLowerCase()));
  // A disabled cache never calls DynamoDB, so unit tests need not configure a table.
  const tableName = options.tableName ?? process.env[TABLE_ENV] ?? (disabled ? 'dynamo-cache-disabled' : undefined);
  if (typeof tableName !== 'string' || !/^[A-Za-z0-9_.-]{3,255}$/.test(tableName)) {
    throw new InvalidOptionsError(
      tableName === undefined || tableName === ''
        ? `tableName is required: pass it as an option or set ${TABLE_ENV}`
        : `tableName must be 3-255 characters of A-Z a-z 0-9 _ . -, got ${JSON.stringify(tableName)}`,
    );
  }
  const namespace = options.namespace ?? process.env[NAMESPACE_ENV] ?? '';
  if (typeof namespace !== 'string') throw new InvalidOptionsError('namespace must be a string');
  assertNamespace(namespace);
  // Duck-typed: a client from another copy of the SDK (the Lambda runtime's, a bundled one) is fine too.
  if (options.client !== undefined && typeof (options.client as { send?: unknown }).send !== 'function') {
    throw new InvalidOptionsError('client must be a DynamoDBClient');
  }
  if (options.attributes !== undefined) assertKnownOptions('attributes', objectOption('attributes', options.attributes), ['key', 'value', 'expiresAt']);
  const attributes = { ...DEFAULT_ATTRIBUTE_NAMES, ...options.attributes };
  for (const [role, name] of Object.entries(attributes)) {
    if (typeof name !== 'string' || name.length === 0 || name.startsWith('dc_')) {
      throw new InvalidOptionsError(`attributes.${role} must be a non-empty attribute name not starting with dc_`);
    }
  }
  if (new Set(Object.values(attributes)).size !== 3) throw new InvalidOptionsError('attributes must be three different names');
  const logger = options.logger ?? defaultLogger();
  for (const level of ['debug', 'info', 'warn', 'error'] as const) {
    if (typeof logger[level] !== 'function') throw new InvalidOptionsError(`logger must have a ${level}() method`);
  }
  const timeoutMs = positiveInteger('timeoutMs', options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  return {
    tableName,
    ...resolveClient(options, timeoutMs),
    namespace,
    defaultTtlSeconds: finiteNumber('defaultTtlSeconds', options.defaultTtlSeconds ?? DEFAULT_TTL_SECONDS),
    memory: options.memory === false ? false : resolveMemory(options.memory ?? {}),
    attributes,
    logger,
    consistentRead: booleanOption('consistentRead', options.consistentRead ?? false),
    timeoutMs,
    retry: resolveRetry(options.retry ?? {}),
    breaker: options.breaker === false ? false : resolveBreaker(options.breaker ?? {}),
    staleWhileRevalidateSeconds: nonNegativeNumber('staleWhileRevalidateSeconds', options.staleWhileRevalidateSeconds ?? 0),
    staleIfErrorSeconds: nonNegativeNumber('staleIfErrorSeconds', options.staleIfErrorSeconds ?? 0),
    negativeTtlSeconds: nonNegativeNumber('negativeTtlSeconds', options.negativeTtlSeconds ?? 0),
    lease: resolveLease('lease', options.lease, LEASE_DEFAULTS),
    earlyRefresh: resolveEarlyRefresh('earlyRefresh', options.earlyRefresh ?? false),
    // With encryption, compression would let the size of a ciphertext tell whether an attacker's guess matches
    // a secret in the same value (CRIME/BREACH): it stays off unless asked for explicitly.
    compression: options.compression === false || (options.compression === undefined && options.encryption !== undefined) ? false : resolveCompression(options.compression ?? {}),
    keyring: options.encryption === undefined ? undefined : new Keyring(options.encryption),
    hashKeys: options.hashKeys,
    maxValueBytes: positiveInteger('maxValueBytes', options.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES),
    largeValueTimeoutMs: positiveInteger('largeValueTimeoutMs', options.largeValueTimeoutMs ?? 3000),
    inlineValueBytes: Math.min(INLINE_VALUE_BYTES, (options as { [INLINE_LIMIT_FOR_TESTS]?: number })[INLINE_LIMIT_FOR_TESTS] ?? INLINE_VALUE_BYTES),
    spreadValueBytes: options.spreadValueBytes === false ? false : positiveInteger('spreadValueBytes', options.spreadValueBytes ?? DEFAULT_SPREAD_VALUE_BYTES),
    deadlineMarginMs: nonNegativeNumber('deadlineMarginMs', options.deadlineMarginMs ?? 500),
    disabled,
    metrics: resolveMetrics(options.metrics),
    prefetch: resolvePrefetch(options.prefetch),
  };
}

/**
 * The DynamoDB client: the caller's, or one the cache creates, with `maxAttempts: 1` (the cache retries
 * inside its own budget) and a request handler that throws when a request outlives its `requestTimeout`, so
 * that the cache can bound each request with it rather than with an AbortSignal, which costs the SDK a
 * promise race per request. Where the handler takes a request's own `requestTimeout` (see
 * {@link takesRequestTimeout}), the usual one (`timeoutMs` plus the slack) is the handler's own, so that a
 * request within the cache's usual budget is sent without options, and the client caches its middleware
 * stack per command (`cacheMiddleware`, unless `clientConfig` sets it or a retry strategy): nobody else holds this client
 * to change its middleware. A client, or a request handler, the caller made keeps the AbortSignal: only it
 * is sure to cancel the caller's handler's requests.
 */
function resolveClient(options: DynamoCacheOptions, timeoutMs: number): { client: DynamoDBClient; cancel: 'signal' | 'request-timeout'; requestTimeoutMs: number | undefined } {
  if (options.client !== undefined) return { client: options.client, cancel: 'signal', requestTimeoutMs: undefined };
  const config = options.clientConfig ?? {};
  const handler = config.requestHandler as { handle?: unknown } | undefined;
  const ownHandler = handler === undefined || (typeof handler === 'object' && handler !== null && typeof handler.handle !== 'function');
  if (!ownHandler) return { client: new DynamoDBClient({ ...config, maxAttempts: config.maxAttempts ?? 1 }), cancel: 'signal', requestTimeoutMs: undefined };
  const requestHandler = { ...(handler as object | undefined), throwOnRequestTimeout: true } as DynamoDBClientConfig['requestHandler'];
  // Not with a retry strategy of the caller's: a legacy one adds to the request's context, shared by every request once cached, on every request.
  const client = new DynamoDBClient({ cacheMiddleware: config.retryStrategy === undefined, ...config, maxAttempts: config.maxAttempts ?? 1, requestHandler });
  const created = client.config.requestHandler as { handle?: unknown; updateHttpClientConfig?: (key: string, value: unknown) => void } | undefined;
  // An older handler reads only its own timeout, as an idle-socket one: set there, it would cut a request with a longer budget (a large value's) short.
  if (created === undefined || !takesRequestTimeout(created) || typeof created.updateHttpClientConfig !== 'function') return { client, cancel: 'request-timeout', requestTimeoutMs: undefined };
  const requestTimeoutMs = timeoutMs + REQUEST_TIMEOUT_SLACK_MS;
  created.updateHttpClientConfig('requestTimeout', requestTimeoutMs);
  return { client, cancel: 'request-timeout', requestTimeoutMs };
}

/**
 * Whether `handler` takes a request's own `requestTimeout` (`handle(request, { abortSignal, requestTimeout })`,
 * @smithy/node-http-handler 4.1 and later, minified or not). Earlier ones take only `abortSignal` and ignore
 * the rest: the cache then passes each request's bound as before, which they ignore too (the budget still
 * ends the operation).
 */
function takesRequestTimeout(handler: { handle?: unknown }): boolean {
  if (typeof handler.handle !== 'function') return false;
  const source = Function.prototype.toString.call(handler.handle);
  return /\brequestTimeout\b/.test(source.slice(0, source.indexOf(')')));
}

function resolveMetrics(metrics: unknown): CacheMetrics | undefined {
  if (metrics !== undefined && typeof (metrics as CacheMetrics | null)?.addMetric !== 'function') throw new InvalidOptionsError('metrics must be a Powertools Metrics instance (an object with addMetric)');
  return metrics as CacheMetrics | undefined;
}

function resolvePrefetch(prefetch: unknown): readonly string[] {
  if (prefetch === undefined) return [];
  if (!Array.isArray(prefetch) || prefetch.some((key) => typeof key !== 'string' || key === '')) throw new InvalidOptionsError('prefetch must be an array of cache keys');
  return prefetch;
}

/** Checks that a nested option is an object, and returns it. */
function objectOption(name: string, value: unknown): object {
  if (typeof value !== 'object' || value === null) throw new InvalidOptionsError(`${name} must be an object`);
  return value;
}

function resolveCompression(compression: CompressionOptions): Required<CompressionOptions> {
  if (typeof compression !== 'object' || compression === null) throw new InvalidOptionsError('compression must be false or an object');
  assertKnownOptions('compression', compression, ['algorithm', 'thresholdBytes', 'strings', 'saving']);
  const merged = { ...COMPRESSION_DEFAULTS, ...compression };
  if (merged.algorithm !== 'br' && merged.algorithm !== 'gzip') throw new InvalidOptionsError(`compression.algorithm must be 'br' or 'gzip'`);
  return {
    algorithm: merged.algorithm,
    thresholdBytes: nonNegativeNumber('compression.thresholdBytes', merged.thresholdBytes),
    strings: booleanOption('compression.strings', merged.strings),
    saving: oneOf('compression.saving', merged.saving, ['read-units', 'write-units', 'bytes'] as const),
  };
}

/** Resolves a lease option (`false`, `true`, or partial options over `base`). */
export function resolveLease(name: string, lease: boolean | LeaseOptions | undefined, base: Required<LeaseOptions> | false): Required<LeaseOptions> | false {
  if (lease === false) return false;
  if (lease === undefined) return base;
  if (lease !== true && (typeof lease !== 'object' || lease === null)) throw new InvalidOptionsError(`${name} must be true, false or an object`);
  if (lease !== true) assertKnownOptions(name, lease, ['ttlMs', 'waitMs', 'pollMs', 'maxPollMs', 'onWaitTimeout']);
  const merged = { ...LEASE_DEFAULTS, ...(base || {}), ...(lease === true ? {} : lease) };
  if (merged.onWaitTimeout !== 'fetch' && merged.onWaitTimeout !== 'throw') throw new InvalidOptionsError(`${name}.onWaitTimeout must be 'fetch' or 'throw'`);
  return {
    ttlMs: positiveInteger(`${name}.ttlMs`, merged.ttlMs),
    waitMs: nonNegativeNumber(`${name}.waitMs`, merged.waitMs),
    pollMs: positiveInteger(`${name}.pollMs`, merged.pollMs),
    maxPollMs: positiveInteger(`${name}.maxPollMs`, merged.maxPollMs),
    onWaitTimeout: merged.onWaitTimeout,
  };
}

/** Resolves an early-refresh option (`false`, `true`, or `{ beta }`). */
export function resolveEarlyRefresh(name: string, earlyRefresh: boolean | EarlyRefreshOptions): Required<EarlyRefreshOptions> | false {
  if (earlyRefresh === false) return false;
  if (earlyRefresh === true) return { beta: 1 };
  if (typeof earlyRefresh !== 'object' || earlyRefresh === null) throw new InvalidOptionsError(`${name} must be true, false or { beta }`);
  assertKnownOptions(name, earlyRefresh, ['beta']);
  return { beta: positiveNumber(`${name}.beta`, earlyRefresh.beta ?? 1) };
}

function resolveMemory(memory: MemoryTierOptions): Required<MemoryTierOptions> {
  assertKnownOptions('memory', objectOption('memory', memory), ['maxEntries', 'maxBytes', 'ttlSeconds']);
  const merged = { ...MEMORY_TIER_DEFAULTS, ...memory };
  return {
    maxEntries: positiveInteger('memory.maxEntries', merged.maxEntries),
    maxBytes: positiveInteger('memory.maxBytes', merged.maxBytes),
    ttlSeconds: positiveNumber('memory.ttlSeconds', merged.ttlSeconds),
  };
}

function resolveRetry(retryOptions: RetryOptions): Required<RetryOptions> {
  assertKnownOptions('retry', objectOption('retry', retryOptions), ['maxAttempts', 'baseDelayMs', 'maxDelayMs']);
  const merged = { ...RETRY_DEFAULTS, ...retryOptions };
  return {
    maxAttempts: positiveInteger('retry.maxAttempts', merged.maxAttempts),
    baseDelayMs: nonNegativeNumber('retry.baseDelayMs', merged.baseDelayMs),
    maxDelayMs: nonNegativeNumber('retry.maxDelayMs', merged.maxDelayMs),
  };
}

function resolveBreaker(breaker: BreakerOptions): Required<BreakerOptions> {
  assertKnownOptions('breaker', objectOption('breaker', breaker), ['consecutiveFailures', 'halfOpenAfterMs']);
  const merged = { ...BREAKER_DEFAULTS, ...breaker };
  return {
    consecutiveFailures: positiveInteger('breaker.consecutiveFailures', merged.consecutiveFailures),
    halfOpenAfterMs: positiveInteger('breaker.halfOpenAfterMs', merged.halfOpenAfterMs),
  };
}

/** Checks a per-call or per-option TTL: any finite number of seconds (zero or less stores an expired item). */
export function finiteNumber(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new InvalidOptionsError(`${name} must be a finite number, got ${String(value)}`);
  return value;
}

/** Checks a number that must be zero or more. */
export function nonNegativeNumber(name: string, value: unknown): number {
  if (finiteNumber(name, value) < 0) throw new InvalidOptionsError(`${name} must be zero or more, got ${String(value)}`);
  return value as number;
}

/** Checks a number that must be more than zero. */
export function positiveNumber(name: string, value: unknown): number {
  if (finiteNumber(name, value) <= 0) throw new InvalidOptionsError(`${name} must be more than zero, got ${String(value)}`);
  return value as number;
}

/** Checks an integer that must be 1 or more. */
export function positiveInteger(name: string, value: unknown): number {
  if (!Number.isInteger(value) || (value as number) < 1) throw new InvalidOptionsError(`${name} must be an integer of 1 or more, got ${String(value)}`);
  return value as number;
}

/** Checks an option that takes one of a few strings. */
function oneOf<T extends string>(name: string, value: unknown, allowed: readonly T[]): T {
  if (!allowed.includes(value as T)) throw new InvalidOptionsError(`${name} must be ${allowed.map((a) => `'${a}'`).join(' or ')}, got ${String(value)}`);
  return value as T;
}

/** Checks a boolean option. */
export function booleanOption(name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw new InvalidOptionsError(`${name} must be true or false, got ${String(value)}`);
  return value;
}
