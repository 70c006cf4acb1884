import { ValueCodec, decodePayload, encodeValue, type Payload } from './codec/value-codec.ts';
import { CALL_OPTION_NAMES, assertResultHook, callBudget, reportResult, sourceOf, type CacheSource, type CallOptions, type ResultOptions } from './resilience/call-options.ts';
import { decodeEntry, take, timingOf, type CacheEntry, type Decoded } from './storage/entry.ts';
import { InvalidOptionsError, InvalidValueError } from './errors.ts';
import { deadlinesFor, isFresh, type Lifetime } from './refresh/freshness.ts';
import { KeyMapper, assertKey, type Slot } from './storage/keys.ts';
import { assertKnownOptions } from './known-options.ts';
import type { CacheLogger } from './observability/logger.ts';
import { MEMORY_TIER_DEFAULTS, MemoryTier } from './storage/memory-tier.ts';
import { NamespaceGeneration } from './storage/namespace-generation.ts';
import {
  nonNegativeNumber,
  resolveEarlyRefresh,
  resolveLease,
  resolveOptions,
  type DynamoCacheOptions,
  type EarlyRefreshOptions,
  type LeaseOptions,
  type ResolvedOptions,
} from './options.ts';
import { DynamoStore } from './storage/dynamo-store.ts';
import { RefreshCoordinator, type RefreshPolicy, type Turn } from './refresh/coordinator.ts';
import { DynamoGuard, UNBOUNDED, type CallBudget, type CircuitStatus } from './resilience/dynamo-guard.ts';
import { SingleFlight } from './refresh/single-flight.ts';
import { ManyFetchContext, SingleFetchContext, assertTtlOption, policyFor, previousValueOf, ttlOfValue, type FetchContext, type PreviousValue, type StaleWindows, type TtlSeconds } from './refresh/fetch-context.ts';
import { StatsRecorder, type CacheStats } from './observability/stats.ts';
import { countingRequests, traceMethods } from './observability/tracing.ts';
import { BatchRefresh, valuesOf, type BatchKey, type FetchMany, type KeyAnswer } from './refresh/batch-refresh.ts';
import { TwoTierStore } from './storage/two-tier-store.ts';
import { assertTags } from './invalidation/tags.ts';
import { TagStates, invalidationMode, type CapturedTags, type InvalidationMode, type Tagging } from './invalidation/tag-states.ts';

/** Options of `get`. */
export interface GetOptions extends CallOptions, ResultOptions {}

/** Options of `set` (and of `acquire`'s `fulfil`, where `signal` and `deadline` are the `acquire`'s). */
export interface SetOptions<T = unknown> extends CallOptions, StaleWindows {
  /**
   * Seconds the value stays fresh, or a function of the value (and key) that returns them: `(token) => token.expires_in`.
   * Zero or less stores an already-expired item. Default: `defaultTtlSeconds`.
   */
  ttlSeconds?: TtlSeconds<T> | undefined;
  /**
   * Tags of the value, for `invalidateTags`: at most 64, each 1-256 characters (code points) without control
   * characters; letter case counts. Each costs one small item per tag in the table (written once) and a read of
   * its state per environment per `memory.ttlSeconds`. Default: none.
   */
  tags?: readonly string[] | undefined;
}

/** Options of `getOrSet` (and `wrap`, and `acquire`). */
export interface GetOrSetOptions<T = unknown> extends SetOptions<T>, ResultOptions {
  /** Seconds a fetcher's `undefined` is cached as "not found" (`0`: not cached). Default: the instance's. */
  negativeTtlSeconds?: number | undefined;
  /** The refresh lease for this call: `false` to fetch without coordination, or options over the instance's. */
  lease?: boolean | LeaseOptions | undefined;
  /** Probabilistic early refresh for this call. Default: the instance's. */
  earlyRefresh?: boolean | EarlyRefreshOptions | undefined;
}

/** Options of `wrap`. */
export interface WrapOptions<TArgs extends unknown[], TResult = unknown> extends Omit<GetOrSetOptions<TResult>, keyof CallOptions | 'tags'> {
  /** The tags of a call's value, or a function of its arguments that gives them (`(id) => [`user:${id}`]`). Default: none. */
  tags?: readonly string[] | ((...args: TArgs) => readonly string[]) | undefined;
  /**
   * The cache key of a call. Default: the function's name and its arguments as JSON
   * (`loadUser:["42"]`), which needs a named function and JSON arguments.
   */
  key?: ((...args: TArgs) => string) | undefined;
  /**
   * The signal and deadline of a call, from its arguments (e.g. a Lambda `context` among them:
   * `(id, context) => ({ deadline: context })`). Default: none.
   */
  callOptions?: ((...args: TArgs) => CallOptions) | undefined;
}

/** Options of `getMany` and `delete`. */
export type ManyOptions = CallOptions;

/** Options of `getOrSetMany`: those of `getOrSet`, for each key, without `earlyRefresh`. */
export interface GetOrSetManyOptions<T = unknown> extends Omit<GetOrSetOptions<T>, 'earlyRefresh'> {}

/** Options of `invalidate`. */
export interface InvalidateOptions<T = unknown> extends CallOptions {
  /**
   * Ends the value only if it passes this test: the value this caller saw (a token the server rejected), so that a
   * call made after another caller already replaced it leaves the new value alone. Default: whatever is stored.
   */
  ifValue?: ((value: T) => boolean) | undefined;
}

/** Options of `invalidateTags`. */
export interface InvalidateTagsOptions extends CallOptions {
  /**
   * `'expire'`: the tags' values are never served again, fresh or stale. `'stale'` (soft purge): they are no
   * longer fresh, but `getOrSet`, `wrap` and the middleware answer with them, as stale, within their stale
   * windows (counted from the purge) while one caller refreshes each. Default `'expire'`.
   */
  mode?: InvalidationMode | undefined;
}

const GET_OPTIONS = [...CALL_OPTION_NAMES, 'onResult'] as const;
const SET_OPTIONS = [...CALL_OPTION_NAMES, 'ttlSeconds', 'staleWhileRevalidateSeconds', 'staleIfErrorSeconds', 'tags'] as const;
const GET_OR_SET_OPTIONS = [...SET_OPTIONS, 'onResult', 'negativeTtlSeconds', 'lease', 'earlyRefresh'] as const;
const GET_OR_SET_MANY_OPTIONS = GET_OR_SET_OPTIONS.filter((name) => name !== 'earlyRefresh');
const INVALIDATE_OPTIONS = [...CALL_OPTION_NAMES, 'ifValue'] as const;
const INVALIDATE_TAGS_OPTIONS = [...CALL_OPTION_NAMES, 'mode'] as const;
const WRAP_OPTIONS = [...GET_OR_SET_OPTIONS.filter((name) => name !== 'signal' && name !== 'deadline'), 'key', 'callOptions'] as const;

/** Marks a `DynamoCache` across copies of this package (ESM and CommonJS builds, a layer and a bundle): `instanceof` cannot. */
const BRAND = Symbol.for('dynamo-cache.DynamoCache');

/** `cache.stats()`: the counters plus the current state of the breaker and the memory tier. */
export interface CacheStatsSnapshot extends CacheStats {
  /** State of the circuit breaker around DynamoDB. */
  circuit: CircuitStatus;
  /** Entries in the memory tier (0 when it is off). */
  memoryEntries: number;
  /** Payload bytes in the memory tier. */
  memoryBytes: number;
}

/** The answer of `acquire` when the cache has one. */
export interface CachedAnswer<T> {
  readonly found: true;
  /** The value (`undefined` for a cached "not found"). */
  readonly value: T | undefined;
  /** The value is past its TTL, answered within `staleWhileRevalidateSeconds` while another caller refreshes (or the deadline cut a wait). */
  readonly stale: boolean;
  /** Where it came from: `memory`, `dynamodb`, or `stale`. */
  readonly source: CacheSource;
}

/**
 * The caller's turn to fetch, from `acquire`: it must end with exactly one of `fulfil`, `fail` or
 * `abandon`, which also give the refresh lease back when the caller holds it.
 */
export interface FetchTurn<T> {
  readonly found: false;
  /** The value the key held (stale, or still fresh for an early refresh), if any: see {@link PreviousValue}. */
  readonly previous: PreviousValue<T> | undefined;
  /**
   * Stores the fetched value (a "not found" for `undefined` with `negativeTtlSeconds`), under `options` over the
   * `acquire`'s (`ttlSeconds` may be a function of the value). Resolves whether DynamoDB stored it; `false`, with
   * a warning, when a `ttlSeconds` function gave no usable lifetime (nothing is stored then).
   */
  fulfil(value: T | undefined, options?: SetOptions<T>): Promise<boolean>;
  /** The fetch failed: resolves the value to answer instead (stale-if-error), or `undefined` to let the error through. */
  fail(error: unknown): Promise<{ readonly value: T } | undefined>;
  /** Ends the turn without storing anything. */
  abandon(): Promise<void>;
}

/** What `inspect` reports about one key: for operators and the CLI. */
export interface CacheItemInfo {
  readonly key: string;
  /** The partition key in DynamoDB (namespace, generation and hashing applied). */
  readonly storageKey: string;
  /** The namespace generation the key was looked up in (see `clear`). */
  readonly generation: number;
  /**
   * `absent` (no value), `fresh`, `stale` (past its TTL, inside a stale window), `expired` (not yet deleted
   * by DynamoDB's TTL), `not-found` (a cached "not found"), `lease` (no value, and a refresh under way), or
   * `unreadable` (see `problem`; an encrypted item read without its key, or an unauthenticated one, too).
   */
  readonly state: 'absent' | 'fresh' | 'stale' | 'expired' | 'not-found' | 'lease' | 'unreadable';
  /** The value, when the item holds one that could be decoded. */
  readonly value?: unknown;
  /** The encoding marker (`json+br+aes256gcm:k1`...); `undefined` for a plain string. */
  readonly encoding?: string;
  readonly compression?: string;
  /** The id of the key the value is encrypted with. */
  readonly encryptionKeyId?: string;
  /** Size of the stored value in bytes (compressed, encrypted), and how many chunk items hold it (0: in the item). */
  readonly storedBytes: number;
  readonly chunks: number;
  readonly expiresAt?: Date;
  readonly freshUntil?: Date;
  readonly lease?: { readonly until: Date; readonly owner: string };
  /** Why the item cannot be read. */
  readonly problem?: string;
}

/** What `acquire` resolves: an answer from the cache, or the caller's turn to fetch. */
export type Acquisition<T> = CachedAnswer<T> | FetchTurn<T>;

/**
 * A two-tier cache: a bounded in-memory LRU per execution environment in front of a DynamoDB table shared
 * by every function and environment.
 *
 * It never breaks its caller. Throttling, timeouts, outages and unreadable items become misses (`get`
 * resolves `undefined`, `set` resolves `false`, `getOrSet` calls the fetcher); each is logged and counted
 * in `stats()`. Only bad input throws: `InvalidKeyError`, `InvalidValueError`, `InvalidOptionsError`.
 *
 * @example
 * const cache = new DynamoCache({ tableName: 'app-cache-prod' });
 * const token = await cache.getOrSet('access_token', fetchToken, { ttlSeconds: 3300 });
 */
export class DynamoCache {
  /** The DynamoDB table. */
  readonly tableName: string;
  /** The key namespace (`""` for none). */
  readonly namespace: string;
  /** Whether the cache is turned off (`disabled`, or `DYNAMO_CACHE_DISABLED`): every read misses and DynamoDB is never called. */
  readonly disabled: boolean;
  /**
   * Settles when the `prefetch` keys have been read into the memory tier (or could not be: never rejects).
   * Awaiting it at module load keeps the reads inside INIT.
   */
  readonly ready: Promise<void>;

  readonly #options: ResolvedOptions;
  readonly #keys: KeyMapper;
  readonly #memory: MemoryTier | undefined;
  readonly #store: TwoTierStore;
  readonly #refresh: RefreshCoordinator;
  readonly #guard: DynamoGuard;
  readonly #generation: NamespaceGeneration;
  readonly #tags: TagStates;
  readonly #stats: StatsRecorder;
  readonly #batch: BatchRefresh;
  /**
   * `getOrSet` calls in flight in this process, by memory key (the key whatever the namespace generation):
   * concurrent calls for one key join them, even while the generation is still being read or cannot be.
   */
  readonly #inflight = new SingleFlight<Answer>();

  /** Whether `value` is a `DynamoCache`, from this copy of the package or another (ESM and CommonJS builds, a layer and a bundle). */
  static isDynamoCache(value: unknown): value is DynamoCache {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
  }

  /** @throws InvalidOptionsError when an option is missing, unknown or wrong. */
  constructor(options: DynamoCacheOptions = {}) {
    const resolved = resolveOptions(options);
    Object.defineProperty(this, BRAND, { value: true });
    this.#options = resolved;
    this.tableName = resolved.tableName;
    this.namespace = resolved.namespace;
    this.disabled = resolved.disabled;
    this.#stats = new StatsRecorder(resolved.metrics);
    this.#keys = new KeyMapper(resolved.namespace, resolved.hashKeys);
    this.#memory = resolved.memory === false || resolved.disabled ? undefined : new MemoryTier(resolved.memory);
    this.#guard = new DynamoGuard({ timeoutMs: resolved.timeoutMs, cancel: resolved.cancel, requestTimeoutMs: resolved.requestTimeoutMs, retry: resolved.retry, breaker: resolved.breaker, logger: resolved.logger, stats: this.#stats });
    const dynamo = new DynamoStore({
      client: countingRequests(resolved.client),
      tableName: resolved.tableName,
      attributes: resolved.attributes,
      consistentRead: resolved.consistentRead,
      guard: this.#guard,
      stats: this.#stats,
    });
    // A flush, a delete or an invalidation elsewhere goes unseen at most as long as a memory-tier entry may: one bound for all.
    const refreshSeconds = resolved.memory === false ? MEMORY_TIER_DEFAULTS.ttlSeconds : resolved.memory.ttlSeconds;
    this.#tags = new TagStates({ dynamo, keys: this.#keys, attributes: resolved.attributes, keyring: resolved.keyring, refreshMs: refreshSeconds * 1000, stats: this.#stats, logger: resolved.logger });
    this.#store = new TwoTierStore({
      memory: this.#memory,
      dynamo,
      keys: this.#keys,
      // Decompression is bounded well above anything a cache entry can reasonably expand to.
      codec: new ValueCodec({ compression: resolved.compression, keyring: resolved.keyring, maxDecodedBytes: Math.max(64 * resolved.maxValueBytes, 256 * 1024 * 1024) }),
      keyring: resolved.keyring,
      attributes: resolved.attributes,
      maxValueBytes: resolved.maxValueBytes,
      largeValueTimeoutMs: resolved.largeValueTimeoutMs,
      inlineValueBytes: resolved.inlineValueBytes,
      spreadValueBytes: resolved.spreadValueBytes,
      stats: this.#stats,
      logger: resolved.logger,
      tags: this.#tags,
    });
    this.#refresh = new RefreshCoordinator(this.#store, this.#stats, resolved.logger, resolved.timeoutMs);
    this.#batch = new BatchRefresh({
      store: this.#store,
      refresh: this.#refresh,
      stats: this.#stats,
      marginMs: resolved.deadlineMarginMs,
      endFetch: (turn, payload, decide, tagged) => this.#endFetch(turn, payload, decide, tagged),
    });
    this.#generation = new NamespaceGeneration(dynamo, this.#keys.metaKey, refreshSeconds * 1000, resolved.logger, resolved.timeoutMs);
    this.ready = resolved.prefetch.length === 0 || this.disabled ? Promise.resolve() : this.#prefetch(resolved.prefetch);
  }

  /** The logger the cache reports absorbed failures to. */
  get logger(): CacheLogger {
    return this.#options.logger;
  }

  /** Whether stored values are encrypted (the `encryption` option is configured). */
  get encrypted(): boolean {
    return this.#options.keyring !== undefined;
  }

  /** The largest value stored, in bytes (the `maxValueBytes` option). */
  get maxValueBytes(): number {
    return this.#options.maxValueBytes;
  }

  /**
   * Counts, in `stats()`, an event of a feature built on the cache (`cacheAwsClient`'s calls not stored
   * because they carry secrets). Not for application code.
   * @internal
   */
  count(counter: 'secretsNotStored'): void {
    this.#stats.increment(counter);
  }

  /** Time kept free for the caller before a call's `deadline`, in ms (the `deadlineMarginMs` option). */
  get deadlineMarginMs(): number {
    return this.#options.deadlineMarginMs;
  }

  /**
   * The fresh value stored under `key`, or `undefined` on a miss (absent, expired, stale, a cached "not
   * found", or unreadable because of a cache failure). A cached `null` is a hit and resolves `null`.
   * @throws InvalidKeyError when `key` is not a non-empty string; InvalidOptionsError for a bad option.
   * @throws the signal's reason when `options.signal` aborts.
   */
  async get<T = unknown>(key: string, options: GetOptions = {}): Promise<T | undefined> {
    assertKey(key);
    const call = this.#call('get', options, GET_OPTIONS);
    assertResultHook(options);
    if (this.disabled) return this.#missed(options, key);
    const found = this.#slot(key, 'get', call);
    const slot = found instanceof Promise ? await found : found;
    const memory = this.#store.fromMemory(slot, Date.now());
    const read = memory === undefined ? await this.#readFresh(slot, call) : undefined;
    call.signal?.throwIfAborted();
    const entry = memory ?? read?.entry;
    if (entry === undefined) return this.#missed(options, key);
    const source = read?.source ?? 'memory';
    reportResult(options, key, source === 'memory' ? 'memory' : 'dynamodb');
    return this.#answer(entry, source, read?.decoded) as T | undefined;
  }

  /**
   * Stores `value` under `key`. Resolves `true` when DynamoDB stored it, `false` when a cache failure
   * prevented it (the memory tier still keeps it), or the cache is disabled.
   * @throws InvalidKeyError when `key` is not a non-empty string.
   * @throws InvalidValueError when `value` cannot round-trip exactly (undefined, Date, NaN, a cycle...).
   * @throws InvalidOptionsError for a bad TTL (a `ttlSeconds` function that throws or returns no finite number too) or an unknown option.
   */
  async set<T>(key: string, value: T, options: SetOptions<T> = {}): Promise<boolean> {
    assertKey(key);
    const call = this.#call('set', options, SET_OPTIONS);
    const base = this.#lifetime(options);
    const payload = encodeValue(value);
    const lifetime = typeof options.ttlSeconds === 'function' ? { ...base, ttlSeconds: ttlOfValue(options.ttlSeconds, value, key) } : base;
    const tags = tagsOf(options);
    if (this.disabled) return false;
    const slot = await this.#slot(key, 'set', call);
    const deadlines = deadlinesFor(lifetime, Date.now());
    const stamps = tags === undefined ? undefined : await this.#tags.stamps(tags, undefined, deadlines.expiresAtSeconds, call);
    const written = tags !== undefined && stamps === undefined ? this.#notStored(slot) : await this.#store.write(slot, payload, deadlines, call, { tags: stamps });
    call.signal?.throwIfAborted();
    return written;
  }

  /**
   * The value under `key`; on a miss, calls `fetcher`, stores its result and returns it.
   *
   * Across execution environments, one caller wins the refresh lease and fetches while the others wait for
   * its value or answer from a stale one (`lease`, `staleWhileRevalidateSeconds`); no wait outlasts the
   * call's `deadline` (less `deadlineMarginMs`). In one process, concurrent calls for a key share one read
   * and one fetch, under the first caller's deadline and options. A fetcher that throws rejects every waiter
   * and stores nothing, unless a value within `staleIfErrorSeconds` can be answered instead. A fetcher that
   * returns `undefined` stores nothing (or a "not found" with `negativeTtlSeconds`).
   *
   * The fetcher is called with a {@link FetchContext}: the `previous` value, the call's `signal`, and `setTtl`
   * and `noStore` to shape how its answer is cached. `ttlSeconds` may be a function of the value; when it
   * throws or returns no finite number, the value is answered but not stored (a warning, counted in `errors`).
   * Name `T` (`getOrSet<Token>(...)`) to type `previous`.
   * @throws InvalidKeyError, InvalidOptionsError, InvalidValueError (for the fetcher's result); whatever `fetcher` throws;
   * the signal's reason when `options.signal` aborts.
   */
  async getOrSet<T, TPrevious = T>(key: string, fetcher: (context: FetchContext<TPrevious>) => T | Promise<T>, options: GetOrSetOptions<T> = {}): Promise<T> {
    assertKey(key);
    if (typeof fetcher !== 'function') throw new InvalidOptionsError('getOrSet needs a fetcher function');
    const call = this.#call('getOrSet', options, GET_OR_SET_OPTIONS);
    assertResultHook(options);
    const policy = this.#policy(options);
    const tags = tagsOf(options);
    if (this.disabled) {
      this.#stats.increment('fetches');
      const value = await fetcher(new SingleFetchContext<TPrevious>(undefined, call, this.#options.deadlineMarginMs));
      if (value !== undefined) encodeValue(value); // the same contract as when the cache is on
      reportResult(options, key, 'fetcher');
      return value;
    }
    const memoryKey = this.#keys.storageKey(key, 0);
    if (this.#inflight.has(memoryKey)) this.#stats.increment('coalesced');
    const answer = await this.#inflight.run(memoryKey, call, (own) => this.#resolveOrFetch(key, memoryKey, fetcher, policy, options.ttlSeconds, tags, own));
    reportResult(options, key, answer.source);
    // The first caller gets the value decoded once already (or the fetcher's own); joiners decode their own copy.
    const decoded = take(answer.decoded);
    return (decoded !== undefined ? decoded.value : answer.payload === undefined ? undefined : decodePayload(answer.payload)) as T;
  }

  /**
   * Wraps `fn` so calls are answered from the cache, keyed by `options.key(...args)`.
   * @example const cachedLoad = cache.wrap(loadUser, { key: (id) => `user:${id}`, ttlSeconds: 60 });
   * @throws InvalidOptionsError when `fn` is not a function, or has no name and no `key` is given.
   */
  wrap<TArgs extends unknown[], TResult>(fn: (...args: TArgs) => TResult | Promise<TResult>, options: WrapOptions<TArgs, TResult> = {}): (...args: TArgs) => Promise<TResult> {
    if (typeof fn !== 'function') throw new InvalidOptionsError('wrap needs a function');
    if (typeof options !== 'object' || options === null) throw new InvalidOptionsError('wrap options must be an object');
    assertKnownOptions('wrap()', options, WRAP_OPTIONS);
    const { key, callOptions, tags, ...getOrSetOptions } = options;
    if (key === undefined && fn.name === '') throw new InvalidOptionsError('wrap needs options.key for an anonymous function');
    if (key !== undefined && typeof key !== 'function') throw new InvalidOptionsError('wrap options.key must be a function');
    if (callOptions !== undefined && typeof callOptions !== 'function') throw new InvalidOptionsError('wrap options.callOptions must be a function');
    if (typeof tags !== 'function') tagsOf({ tags });
    assertResultHook(getOrSetOptions);
    this.#policy(getOrSetOptions);
    const keyOf = key ?? ((...args: TArgs) => `${fn.name}:${JSON.stringify(args)}`);
    return (...args: TArgs) =>
      this.getOrSet(keyOf(...args), () => fn(...args), {
        ...getOrSetOptions,
        ...(tags === undefined ? {} : { tags: typeof tags === 'function' ? tags(...args) : tags }),
        ...callOptions?.(...args),
      });
  }

  /**
   * The primitive behind `getOrSet`, for integrations that cannot pass a fetcher (the Middy middleware
   * fetches by running the handler): an answer from the cache, or the caller's turn to fetch, which it
   * must end with `fulfil`, `fail` or `abandon`. Lease, stale windows, early refresh and the call's
   * deadline apply as in `getOrSet`; the turn's own requests (its write) are bounded by the same deadline.
   * @throws InvalidKeyError, InvalidOptionsError; the signal's reason when `options.signal` aborts.
   */
  async acquire<T = unknown>(key: string, options: GetOrSetOptions<T> = {}): Promise<Acquisition<T>> {
    assertKey(key);
    const call = this.#call('acquire', options, GET_OR_SET_OPTIONS);
    assertResultHook(options);
    const policy = this.#policy(options);
    const tags = tagsOf(options);
    if (this.disabled) {
      reportResult(options, key, 'fetcher');
      return { found: false, previous: undefined, fulfil: async () => false, fail: async () => undefined, abandon: async () => {} };
    }
    if (tags !== undefined) this.#tags.prefetch(tags, call);
    const memoryKey = this.#keys.storageKey(key, 0);
    const resolution = await this.#refresh.resolve(await this.#slot(key, 'acquire', call, memoryKey), policy, call, { settle: this.#settle(key, 'acquire', call, memoryKey) });
    if (!resolution.found && call.signal?.aborted) {
      await this.#refresh.abandon(resolution.turn); // gives a lease won just now back
      call.signal.throwIfAborted();
    }
    if (resolution.found) {
      const source = sourceOf(resolution);
      reportResult(options, key, source);
      const decoded = take(resolution.decoded);
      return { found: true, value: (decoded !== undefined ? decoded.value : decodeEntry(resolution.entry)) as T | undefined, stale: resolution.stale, source };
    }
    reportResult(options, key, 'fetcher');
    this.#stats.increment('fetches');
    const turn = resolution.turn;
    // The states the value will be stamped with are taken now, before the caller fetches (see #fetch).
    const captured = tags === undefined ? undefined : this.#tags.capture(tags, turn.call, turn.startedAt);
    let ended = false;
    const end = () => {
      if (ended) throw new InvalidOptionsError('a fetch turn can be ended only once');
      ended = true;
    };
    return {
      found: false,
      previous: previousValueOf<T>(turn.previous, Date.now()),
      fulfil: async (value, setOptions) => {
        // Checked first: a value that cannot be stored, or bad options, throw with the turn still open, so it can be abandoned.
        const payload = value === undefined ? undefined : encodeValue(value);
        if (setOptions !== undefined) this.#checkOptions('fulfil', setOptions, SET_OPTIONS);
        const base = setOptions === undefined ? policy : { ...policy, ...this.#lifetime({ ...policy, ...setOptions }) };
        const ttl = setOptions?.ttlSeconds ?? options.ttlSeconds;
        const storedTags = setOptions?.tags === undefined ? tags : tagsOf(setOptions);
        end();
        return this.#endFetch(turn, payload, () => policyFor(base, key, value, undefined, ttl), tagging(storedTags, captured));
      },
      fail: async (error) => {
        end();
        const fallback = await this.#refresh.fail(turn, error);
        return fallback === undefined ? undefined : { value: decodeEntry(fallback) as T };
      },
      abandon: async () => {
        end();
        await this.#refresh.abandon(turn);
      },
    };
  }

  /**
   * The fresh values of several keys at once, as a `Map` of the hits (misses are absent). Memory hits are
   * served first; the rest are read with BatchGetItem, 100 keys per request.
   * @throws InvalidKeyError when any key is not a non-empty string; the signal's reason when `options.signal` aborts.
   */
  async getMany<T = unknown>(keys: readonly string[], options: ManyOptions = {}): Promise<Map<string, T>> {
    const distinct = distinctKeys('getMany', keys);
    const call = this.#call('getMany', options, CALL_OPTION_NAMES);
    const result = new Map<string, T>();
    if (this.disabled) {
      this.#stats.increment('misses', distinct.length);
      return result;
    }
    const generation = await this.#generationOf('getMany', distinct, call);
    const toRead: Array<{ key: string; slot: Slot & { storageKey: string } }> = [];
    for (const key of distinct) {
      const slot = this.#keys.slot(key, generation, undefined, this.#generation.lastKnown);
      const entry = this.#store.fromMemory(slot, Date.now());
      if (entry !== undefined) this.#collect(result, key, entry, 'memory');
      else if (slot.storageKey === undefined) this.#stats.increment('misses');
      else toRead.push({ key, slot: slot as Slot & { storageKey: string } });
    }
    if (toRead.length > 0) {
      // The key mapping is one-to-one, so each distinct key has its own storage key.
      const states = await this.#store.readMany(
        toRead.map(({ slot }) => slot),
        call,
      );
      for (const { key, slot } of toRead) {
        const state = states.get(slot.storageKey);
        if (state?.entry !== undefined && isFresh(state.entry, Date.now())) this.#collect(result, key, state.entry, 'dynamo', state.decoded);
        else this.#stats.increment('misses');
      }
    }
    call.signal?.throwIfAborted();
    return result;
  }

  /**
   * The values of many keys, fetching the missing ones together, as a `Map` of the keys that have one ("not
   * found" keys are left out). Memory first; then one BatchGetItem (100 keys per request, `UnprocessedKeys`
   * retried within the budget); then, for each key still missing, its refresh lease (one conditional write of
   * the key's small lease item, all in parallel) and one `fetchMany` call with the keys this environment won.
   * Keys another environment is fetching are waited for (polled together, at most `lease.waitMs`, and never past
   * the deadline), or answered stale within `staleWhileRevalidateSeconds`; a wait that ends without that
   * environment's value (its fetch failed, its lease ran out, the wait did) makes the key this environment's to
   * fetch, with the keys whose waits ended in the same poll round: a further `fetchMany` call, only then.
   * A cache problem of one key (its read, lease or write failing) never fails the call: the key is fetched, or
   * its value answered without being stored.
   *
   * `fetchMany(keys, context)` resolves a `Map` or a plain object of key to value; a key it leaves out (or maps to
   * `undefined`) is "not found", cached with `negativeTtlSeconds`; keys it was not asked for are ignored. If it
   * throws, the call rejects with its error, unless each of its keys has a value within `staleIfErrorSeconds`,
   * answered instead. The {@link FetchManyContext} holds the keys' previous values, the call's signal, `setTtl`
   * and `noStore`. `ttlSeconds` may be a function of each value and its key; `onResult` is called for each key.
   * @throws InvalidKeyError, InvalidOptionsError; InvalidValueError when `fetchMany` resolves something else than
   * a Map or an object, or a value that cannot be stored (the other keys' values are stored); whatever
   * `fetchMany` throws; the signal's reason when `options.signal` aborts.
   */
  async getOrSetMany<T, TPrevious = T>(keys: readonly string[], fetchMany: FetchMany<T, TPrevious>, options: GetOrSetManyOptions<T> = {}): Promise<Map<string, T>> {
    const distinct = distinctKeys('getOrSetMany', keys);
    if (typeof fetchMany !== 'function') throw new InvalidOptionsError('getOrSetMany needs a fetchMany function');
    const call = this.#call('getOrSetMany', options, GET_OR_SET_MANY_OPTIONS);
    assertResultHook(options);
    const policy = this.#policy(options);
    const tags = tagsOf(options);
    const answers = new Map<string, KeyAnswer>();
    if (distinct.length === 0) return new Map();
    if (this.disabled) {
      this.#stats.increment('fetches', distinct.length);
      // Every key is this fetch's (noStore may name any), none has a previous value.
      const context = new ManyFetchContext<TPrevious>(new Map(distinct.map((key) => [key, undefined])), call, this.#options.deadlineMarginMs);
      const values = valuesOf(await fetchMany([...distinct], context));
      for (const key of distinct) {
        const value = values.get(key);
        if (value !== undefined) encodeValue(value); // the same contract as when the cache is on
        answers.set(key, { value, found: value !== undefined, source: 'fetcher' });
      }
    } else {
      const generation = await this.#generationOf('getOrSetMany', distinct, call);
      const missing: BatchKey[] = [];
      for (const key of distinct) {
        const slot = this.#keys.slot(key, generation, undefined, this.#generation.lastKnown);
        const entry = this.#store.fromMemory(slot, Date.now());
        if (entry === undefined) {
          // The generation unknown (DynamoDB throttled or slow): each key waits for it as getOrSet does (the reads of it are shared).
          const settle = generation === undefined ? (untilMs: number, batch: CallBudget) => this.#settle(key, 'getOrSetMany', batch, slot.memoryKey)(untilMs) : undefined;
          missing.push({ key, slot, settle });
        } else answers.set(key, { value: this.#answer(entry, 'memory'), found: entry.payload !== undefined, source: 'memory' });
      }
      if (missing.length > 0) {
        // The tags' states are taken before anything is fetched, as getOrSet takes them (see #fetch).
        const tagged = tags === undefined ? undefined : tagging(tags, this.#tags.capture(tags, call));
        for (const [key, answer] of await this.#batch.run(missing, fetchMany, policy, options.ttlSeconds, call, tagged)) answers.set(key, answer);
      }
      call.signal?.throwIfAborted();
    }
    const result = new Map<string, T>();
    for (const key of distinct) {
      const answer = answers.get(key)!;
      reportResult(options, key, answer.source);
      if (answer.found) result.set(key, answer.value as T);
    }
    return result;
  }

  /**
   * Stores many values at once, as `set` does each: in this environment's memory tier, then in DynamoDB with
   * BatchWriteItem (25 items per request, in parallel; `UnprocessedItems` retried with backoff within the
   * budget). A value too large for one item is written on its own (its chunks, then its head). `entries` is a
   * `Map`, an array of `[key, value]` pairs or a plain object (a key given twice: the last value). `ttlSeconds`
   * may be a function of each value and its key. Resolves `true` when DynamoDB stored every entry, `false`
   * when a cache failure kept any out (logged; the memory tier keeps them) or the cache is disabled.
   * @throws InvalidKeyError, InvalidValueError (naming the key), InvalidOptionsError (a `ttlSeconds` function that
   * throws or returns no finite number too): before anything is stored. The signal's reason when `options.signal` aborts.
   */
  async setMany<T>(entries: ReadonlyMap<string, T> | Iterable<readonly [string, T]> | Readonly<Record<string, T>>, options: SetOptions<T> = {}): Promise<boolean> {
    const call = this.#call('setMany', options, SET_OPTIONS);
    const base = this.#lifetime(options);
    const tags = tagsOf(options);
    const ttl = options.ttlSeconds;
    const prepared = [...entriesOf<T>(entries)].map(([key, value]) => {
      assertKey(key);
      try {
        return { key, payload: encodeValue(value), lifetime: typeof ttl === 'function' ? { ...base, ttlSeconds: ttlOfValue(ttl, value, key) } : base };
      } catch (error) {
        const Failure = error instanceof InvalidValueError ? InvalidValueError : InvalidOptionsError;
        throw new Failure(`setMany(): ${JSON.stringify(key)}: ${(error as Error).message}`, { cause: error });
      }
    });
    if (this.disabled) return false;
    if (prepared.length === 0) return true;
    const generation = await this.#generationOf(
      'setMany',
      prepared.map(({ key }) => key),
      call,
    );
    const now = Date.now();
    const writes = prepared.map(({ key, payload, lifetime }) => ({ slot: this.#keys.slot(key, generation, undefined, this.#generation.lastKnown), payload, deadlines: deadlinesFor(lifetime, now) }));
    // One stamp for every entry: their tags' states outlive the last of them.
    const stamps = tags === undefined ? undefined : await this.#tags.stamps(tags, undefined, writes.reduce((last, { deadlines }) => Math.max(last, deadlines.expiresAtSeconds), 0), call);
    if (tags !== undefined && stamps === undefined) {
      for (const { slot } of writes) this.#notStored(slot);
      call.signal?.throwIfAborted();
      return false;
    }
    const written = await this.#store.writeMany(
      writes.map((write) => ({ ...write, tags: stamps })),
      call,
    );
    call.signal?.throwIfAborted();
    return written.every((stored) => stored);
  }

  /**
   * Ends the value under `key` for the whole fleet: it is never answered again, fresh or stale, and the next
   * `getOrSet` refreshes it at once (one caller across the fleet, through the lease, without waiting for an
   * earlier refresh's lease to expire as after `delete`). With `ifValue`, only when the stored value passes the
   * test. One strongly consistent read, then one write conditional on that value still being there: a value
   * another caller stored meanwhile is kept. This environment's memory tier drops the key either way; others
   * stop serving it from theirs within `memory.ttlSeconds`. Resolves whether this call ended a value or a cached
   * "not found" (the thing now exists; `ifValue` never accepts a "not found") (`false`: none stored, a value
   * failing `ifValue`, one replaced or ended already, DynamoDB failing: logged, or the cache disabled).
   * @throws InvalidKeyError, InvalidOptionsError; whatever `ifValue` throws; the signal's reason when `options.signal` aborts.
   */
  async invalidate<T = unknown>(key: string, options: InvalidateOptions<T> = {}): Promise<boolean> {
    assertKey(key);
    const call = this.#call('invalidate', options, INVALIDATE_OPTIONS);
    const test = options.ifValue;
    if (test !== undefined && typeof test !== 'function') throw new InvalidOptionsError('invalidate() ifValue must be a function of the stored value');
    if (this.disabled) return false;
    const ended = await this.#store.invalidate(await this.#slot(key, 'invalidate', call), test === undefined ? undefined : (payload) => payload !== undefined && test(decodePayload(payload) as T), call);
    call.signal?.throwIfAborted();
    return ended;
  }

  /**
   * Removes `key` from this environment's memory tier and from DynamoDB. Other environments stop serving
   * it from their memory tiers within `memory.ttlSeconds`. Resolves `false` when DynamoDB failed.
   * @throws InvalidKeyError when `key` is not a non-empty string.
   */
  async delete(key: string, options: ManyOptions = {}): Promise<boolean> {
    assertKey(key);
    const call = this.#call('delete', options, CALL_OPTION_NAMES);
    if (this.disabled) return false;
    const deleted = await this.#store.delete(await this.#slot(key, 'delete', call), call);
    call.signal?.throwIfAborted();
    return deleted;
  }

  /**
   * Invalidates every value stored with any of `tags`, by any function that shares the table and namespace:
   * one write per tag. This environment sees it at once; others within `memory.ttlSeconds` (30 s by default),
   * when they read the tags' state again (one that cannot, DynamoDB failing, answers by the states it last knew
   * until it can): from then on no environment answers such a value as fresh (with
   * `mode: 'stale'`, `getOrSet` may answer it as stale within its stale windows while one caller refreshes it).
   * Values written after the invalidation are not affected. Resolves `false` when a state could not be written
   * (logged), or the cache is disabled.
   * @throws InvalidOptionsError when `tags` is not an array of valid tags, or for a bad option.
   * @throws the signal's reason when `options.signal` aborts.
   */
  async invalidateTags(tags: readonly string[], options: InvalidateTagsOptions = {}): Promise<boolean> {
    const call = this.#call('invalidateTags', options, INVALIDATE_TAGS_OPTIONS);
    const list = assertTags('invalidateTags() tags', tags, Number.POSITIVE_INFINITY);
    const mode = invalidationMode('invalidateTags() mode', options.mode);
    if (this.disabled) return false;
    const done = list.length === 0 || (await this.#tags.invalidate(list, mode, call));
    call.signal?.throwIfAborted();
    if (!done) this.#options.logger.warn('dynamo-cache: tags not invalidated', { tags: list.length, mode });
    return done;
  }

  /**
   * Flushes the namespace in O(1): one atomic write starts a new generation, which every stored key
   * includes, so all current values become unreachable at once (DynamoDB's TTL deletes them later). This
   * environment sees the flush at once; others within `memory.ttlSeconds` (30 s by default), when they
   * reread the generation. Resolves `false` when DynamoDB failed or the cache is disabled.
   */
  async clear(): Promise<boolean> {
    this.#memory?.clear();
    if (this.disabled) return false;
    const generation = await this.#generation.bump();
    if (generation === undefined) return false;
    this.#options.logger.info('dynamo-cache: namespace flushed', { namespace: this.namespace, generation });
    return true;
  }

  /**
   * What DynamoDB holds for `key`: state, timing, encoding, size, lease, and the decoded value when
   * readable. For operators and tools; resolves `undefined` when DynamoDB failed (logged) or the call's
   * deadline left no time. Strongly consistent, and never from the memory tier.
   * @throws InvalidKeyError when `key` is not a non-empty string.
   */
  async inspect(key: string, options: CallOptions = {}): Promise<CacheItemInfo | undefined> {
    assertKey(key);
    const call = this.#call('inspect', options, CALL_OPTION_NAMES);
    if (this.disabled) return undefined;
    const generation = await this.#generation.current({ operation: 'inspect', key: this.#keys.storageKey(key, 0) }, call);
    if (generation === undefined) return undefined;
    const storageKey = this.#keys.storageKey(key, generation);
    const found = await this.#store.inspect(storageKey, call);
    call.signal?.throwIfAborted();
    if (!found.ok) return undefined;
    const { record, lease } = found;
    const leaseInfo = lease === undefined ? {} : { lease: { until: new Date(lease.untilMs), owner: lease.owner } };
    const base = { key, storageKey, generation, storedBytes: found.storedBytes, chunks: record?.chunked?.count ?? 0, ...leaseInfo };
    const empty = record === undefined || (record.body === undefined && record.chunked === undefined && !record.negative);
    if (empty && found.problem === undefined) return { ...base, state: lease === undefined ? 'absent' : 'lease' };
    const marker = record?.chunked?.marker ?? record?.body?.marker;
    const steps = (marker ?? '').split('+').slice(1);
    const compression = steps.find((step) => step === 'br' || step === 'gzip');
    const encryptionKeyId = steps.find((step) => /^aes256gcm2?:/.test(step))?.split(':')[1];
    const timing = record === undefined ? undefined : timingOf(record);
    const now = Date.now();
    let state: CacheItemInfo['state'];
    if (found.problem !== undefined || timing === undefined) state = 'unreadable';
    else if (now >= timing.expiresAtMs) state = 'expired';
    else if (record?.negative) state = 'not-found';
    else state = isFresh(timing, now) ? 'fresh' : 'stale';
    return {
      ...base,
      state,
      ...(found.payload === undefined ? {} : { value: decodePayload(found.payload) }),
      ...(marker === undefined || record?.negative ? {} : { encoding: marker }),
      ...(compression === undefined ? {} : { compression }),
      ...(encryptionKeyId === undefined ? {} : { encryptionKeyId }),
      ...(timing === undefined ? {} : { expiresAt: new Date(timing.expiresAtMs), freshUntil: new Date(timing.freshUntilMs) }),
      ...(found.problem === undefined ? {} : { problem: found.problem }),
    };
  }

  /** Counters since this instance was created, the breaker's state and the memory tier's size. */
  stats(): CacheStatsSnapshot {
    return { ...this.#stats.snapshot(), circuit: this.#guard.circuit, memoryEntries: this.#memory?.size ?? 0, memoryBytes: this.#memory?.bytes ?? 0 };
  }

  /**
   * Where `key` lives for this call: its memory-tier key, and its DynamoDB key in the current namespace
   * generation (rereading it when due), or none when the generation cannot be read (already logged).
   */
  #slot(key: string, operation: string, call: CallBudget, memoryKey = this.#keys.storageKey(key, 0)): Slot | Promise<Slot> {
    const generation = this.#generation.current({ operation, key: memoryKey }, call);
    // Known (the usual case): no promise, no await.
    if (!(generation instanceof Promise)) return this.#keys.slot(key, generation, memoryKey, this.#generation.lastKnown);
    return generation.then((known) => this.#keys.slot(key, known, memoryKey, this.#generation.lastKnown));
  }

  /** Waits, for a caller that coordinates through the lease, for a namespace generation DynamoDB was too busy to give (see `NamespaceGeneration.settle`). */
  #settle(key: string, operation: string, call: CallBudget, memoryKey: string): (untilMs: number) => Promise<Slot> {
    return async (untilMs) => this.#keys.slot(key, await this.#generation.settle({ operation, key: memoryKey }, call, untilMs), memoryKey, this.#generation.lastKnown);
  }

  /** Checks a call's options (type and names) and returns its budget. */
  #call(operation: string, options: CallOptions, known: readonly string[]): CallBudget {
    this.#checkOptions(operation, options, known);
    if (options.signal === undefined && options.deadline === undefined) return UNBOUNDED;
    const call = callBudget(options, this.#options.deadlineMarginMs);
    call.signal?.throwIfAborted();
    return call;
  }

  /** The namespace generation for an operation on `keys` (one key is named in a failure's warning). */
  #generationOf(operation: string, keys: readonly string[], call: CallBudget): number | undefined | Promise<number | undefined> {
    return this.#generation.current({ operation, key: keys.length === 1 ? this.#keys.storageKey(keys[0]!, 0) : `${keys.length} keys` }, call);
  }

  /** Checks that options are an object of known names. */
  #checkOptions(operation: string, options: object, known: readonly string[]): void {
    if (typeof options !== 'object' || options === null) throw new InvalidOptionsError(`${operation}() options must be an object`);
    assertKnownOptions(`${operation}() options`, options, known);
  }

  /** Counts a miss, tells `onResult`, and answers `undefined`. */
  #missed(options: ResultOptions, key: string): undefined {
    this.#stats.increment('misses');
    reportResult(options, key, 'none');
    return undefined;
  }

  async #resolveOrFetch<T>(key: string, memoryKey: string, fetcher: Fetcher<T>, policy: RefreshPolicy, ttl: TtlSeconds<T> | undefined, tags: readonly string[] | undefined, call: CallBudget): Promise<Answer> {
    // Read alongside the value: a value under tags new to this environment costs no second round trip in a row.
    if (tags !== undefined) this.#tags.prefetch(tags, call);
    const slot = this.#slot(key, 'getOrSet', call, memoryKey);
    const resolution = await this.#refresh.resolve(slot instanceof Promise ? await slot : slot, policy, call, { settle: this.#settle(key, 'getOrSet', call, memoryKey) });
    if (resolution.found) return { payload: resolution.entry.payload, source: sourceOf(resolution), decoded: resolution.decoded };
    if (call.signal?.aborted) {
      // Every caller gave up: no fetch, and a lease won just now goes back at once.
      await this.#refresh.abandon(resolution.turn);
      call.signal.throwIfAborted();
    }
    return this.#fetch(key, resolution.turn, fetcher, policy, ttl, tags);
  }

  async #fetch<T>(key: string, turn: Turn, fetcher: Fetcher<T>, policy: RefreshPolicy, ttl: TtlSeconds<T> | undefined, tags: readonly string[] | undefined): Promise<Answer> {
    this.#stats.increment('fetches');
    // Taken before the fetch: an invalidation that lands while it runs leaves the value stamped with the old
    // states, so it is not fresh after all (it may hold data from before the change).
    const captured = tags === undefined ? undefined : this.#tags.capture(tags, turn.call, turn.startedAt);
    const context = new SingleFetchContext(turn.previous, turn.call, this.#options.deadlineMarginMs, tags);
    let value: T;
    try {
      value = await fetcher(context);
    } catch (error) {
      if (context.refused(error)) {
        // A bug in the caller's code, not the upstream failing: no stale answer, and no failed lease holding the fleet off.
        await this.#refresh.abandon(turn);
        throw error;
      }
      const fallback = await this.#refresh.fail(turn, error);
      if (fallback === undefined) throw error;
      return { payload: fallback.payload, source: 'stale' };
    }
    let payload: Payload | undefined;
    try {
      payload = value === undefined ? undefined : encodeValue(value);
    } catch (error) {
      await this.#refresh.abandon(turn);
      throw error;
    }
    await this.#endFetch(turn, payload, context.skipped ? undefined : () => context.policyFor(policy, key, value, ttl), tagging(context.tags, captured));
    // The fetcher's value itself goes to the first caller (the cache keeps only its encoded copy).
    return { payload, source: 'fetcher', decoded: { value } };
  }

  /**
   * Ends a fetch's turn with its answer: stored under the policy `decide` gives, or not stored (`decide` absent:
   * `noStore`), the lease then given back at once so that environments waiting for this fetch take their own
   * turn. When `decide` throws `InvalidOptionsError` (a `ttlSeconds` function that threw or returned no finite
   * number), the answer is not stored either: the fetch happened, so the caller still gets it, and nothing is
   * stored with a TTL nobody chose; logged, and counted in `errors`. A tagged answer is stamped with its tags'
   * states (those captured when the fetch started); when they cannot be had, it is not stored either (see
   * `#notStored`). Resolves whether DynamoDB stored it.
   */
  async #endFetch(turn: Turn, payload: Payload | undefined, decide: (() => RefreshPolicy) | undefined, tagged?: Tagging): Promise<boolean> {
    let policy: RefreshPolicy | undefined;
    try {
      policy = decide?.();
    } catch (error) {
      if (!(error instanceof InvalidOptionsError)) throw error;
      this.#stats.increment('errors');
      this.#options.logger.warn('dynamo-cache: fetched value answered but not cached: its ttlSeconds function gave no lifetime', {
        key: turn.slot.storageKey ?? turn.slot.memoryKey,
        errorMessage: error.message,
      });
    }
    if (policy === undefined) {
      await this.#refresh.abandon(turn);
      return false;
    }
    const stored = payload !== undefined || policy.negativeTtlSeconds > 0;
    if (tagged === undefined || !stored) return this.#refresh.complete(turn, payload, policy);
    const lifetime = payload === undefined ? { ttlSeconds: policy.negativeTtlSeconds, staleWhileRevalidateSeconds: 0, staleIfErrorSeconds: 0 } : policy;
    // Stamped with no state newer than the turn: one written while the fetch ran may be an invalidation it predates.
    const tagStamps = await this.#tags.stamps(tagged.tags, await tagged.captured, deadlinesFor(lifetime, Date.now()).expiresAtSeconds, turn.call, turn.startedAt);
    if (tagStamps !== undefined) return this.#refresh.complete(turn, payload, { ...policy, tagStamps });
    this.#notStored(turn.slot);
    await this.#refresh.abandon(turn);
    return false;
  }

  /** A tagged value whose tags' states could not be read or written: stored nowhere, and an older one dropped from memory. */
  #notStored(slot: Slot): false {
    this.#memory?.delete(slot.memoryKey);
    this.#options.logger.warn("dynamo-cache: value not stored: its tags' state is unavailable", { key: slot.storageKey ?? slot.memoryKey });
    return false;
  }

  /** Reads the `prefetch` keys into the memory tier; failures are logged (by the reads) and swallowed: INIT never fails for the cache. */
  async #prefetch(keys: readonly string[]): Promise<void> {
    try {
      const found = await this.getMany(keys);
      this.#options.logger.debug('dynamo-cache: prefetched keys into memory', { requested: keys.length, found: found.size });
    } catch (error) {
      this.#options.logger.warn('dynamo-cache: prefetch failed', { errorName: (error as Error)?.name, errorMessage: (error as Error)?.message });
    }
  }

  /**
   * A fresh entry from DynamoDB (which also fills the memory tier), with its decoded value; or, when DynamoDB
   * cannot be read (nor its tags' states), the fresh entry memory still holds past its recheck, as the tag
   * states last known here allow; or `undefined`.
   */
  async #readFresh(slot: Slot, call: CallBudget): Promise<{ entry: CacheEntry; source: 'memory' | 'dynamo'; decoded?: Decoded | undefined } | undefined> {
    const read = slot.storageKey === undefined ? undefined : await this.#store.read(slot as Slot & { storageKey: string }, call);
    if (read?.ok) {
      const entry = read.state.entry;
      return entry !== undefined && isFresh(entry, Date.now()) ? { entry, source: 'dynamo', decoded: read.state.decoded } : undefined;
    }
    const now = Date.now();
    const held = this.#store.held(slot, now, true)?.entry;
    return held !== undefined && isFresh(held, now) ? { entry: held, source: 'memory' } : undefined;
  }

  /** Counts a hit and decodes the caller's copy (`undefined` for a cached "not found"). */
  #answer(entry: CacheEntry, source: 'memory' | 'dynamo', decoded?: Decoded): unknown {
    this.#stats.increment('hits');
    this.#stats.increment(source === 'memory' ? 'memoryHits' : 'dynamoHits');
    if (entry.payload === undefined) this.#stats.increment('negativeHits');
    const taken = take(decoded);
    return taken !== undefined ? taken.value : decodeEntry(entry);
  }

  #collect<T>(result: Map<string, T>, key: string, entry: CacheEntry, source: 'memory' | 'dynamo', decoded?: Decoded): void {
    const value = this.#answer(entry, source, decoded);
    if (entry.payload !== undefined) result.set(key, value as T);
  }

  /** The lifetime of `options`; with a `ttlSeconds` function, its default TTL stands until the function is applied to a value. */
  #lifetime(options: StaleWindows & { ttlSeconds?: unknown }): Lifetime {
    const o = this.#options;
    assertTtlOption('ttlSeconds', options.ttlSeconds);
    return {
      ttlSeconds: typeof options.ttlSeconds === 'number' ? options.ttlSeconds : o.defaultTtlSeconds,
      staleWhileRevalidateSeconds: nonNegativeNumber('staleWhileRevalidateSeconds', options.staleWhileRevalidateSeconds ?? o.staleWhileRevalidateSeconds),
      staleIfErrorSeconds: nonNegativeNumber('staleIfErrorSeconds', options.staleIfErrorSeconds ?? o.staleIfErrorSeconds),
    };
  }

  #policy(options: GetOrSetOptions<any>): RefreshPolicy {
    const o = this.#options;
    return {
      ...this.#lifetime(options),
      negativeTtlSeconds: nonNegativeNumber('negativeTtlSeconds', options.negativeTtlSeconds ?? o.negativeTtlSeconds),
      lease: options.lease === undefined ? o.lease : resolveLease('lease', options.lease, o.lease),
      earlyRefresh: options.earlyRefresh === undefined ? o.earlyRefresh : resolveEarlyRefresh('earlyRefresh', options.earlyRefresh),
    };
  }
}

// Each operation is an OpenTelemetry span when a tracer provider is registered (the number: the index of
// the options argument, where the span's `onResult` goes; -1: none).
traceMethods(DynamoCache, { get: 1, getOrSet: 2, acquire: 1, set: -1, getMany: -1, getOrSetMany: -1, setMany: -1, invalidate: -1, invalidateTags: -1, delete: -1, clear: -1 });

function tagging(tags: readonly string[] | undefined, captured: Promise<CapturedTags> | undefined): Tagging | undefined {
  return tags === undefined ? undefined : { tags, captured };
}

/** The checked tags of a call's options, or `undefined` for none. */
function tagsOf(options: { readonly tags?: readonly string[] | undefined }): readonly string[] | undefined {
  if (options.tags === undefined) return undefined;
  const tags = assertTags('tags', options.tags);
  return tags.length === 0 ? undefined : tags;
}

/** What a `getOrSet` flight resolves: the payload, where it came from, and a decoded value for its first caller. */
interface Answer {
  readonly payload: Payload | undefined;
  readonly source: CacheSource;
  readonly decoded?: Decoded | undefined;
}

/** The distinct keys of a call on many keys. */
function distinctKeys(operation: string, keys: readonly string[]): string[] {
  if (!Array.isArray(keys)) throw new InvalidOptionsError(`${operation} needs an array of keys`);
  for (const key of keys) assertKey(key);
  return [...new Set(keys)];
}

/** The entries of `setMany`, by key (a key given twice: its last value). */
function entriesOf<T>(entries: unknown): Map<string, T> {
  if (typeof entries !== 'object' || entries === null) throw new InvalidOptionsError('setMany needs a Map, an array of [key, value] pairs, or an object');
  if (!(Symbol.iterator in entries)) return new Map(Object.entries(entries));
  const map = new Map<string, T>();
  for (const entry of entries as Iterable<unknown>) {
    if (!Array.isArray(entry) || entry.length !== 2) throw new InvalidOptionsError('setMany entries must be [key, value] pairs');
    map.set(entry[0] as string, entry[1] as T);
  }
  return map;
}

/** A `getOrSet` fetcher, as the cache calls it. */
type Fetcher<T> = (context: FetchContext<any>) => T | Promise<T>;

