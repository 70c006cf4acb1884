import { ValueCodec, decodePayload, encodeValue, type Payload } from './codec/value-codec.ts';
import { CALL_OPTION_NAMES, assertResultHook, callBudget, reportResult, type CacheSource, type CallOptions, type ResultOptions } from './resilience/call-options.ts';
import { take, timingOf, type CacheEntry, type Decoded } from './storage/entry.ts';
import { InvalidOptionsError } from './errors.ts';
import { deadlinesFor, isFresh, type Lifetime } from './refresh/freshness.ts';
import { KeyMapper, assertKey, type Slot } from './storage/keys.ts';
import { assertKnownOptions } from './known-options.ts';
import type { CacheLogger } from './observability/logger.ts';
import { MEMORY_TIER_DEFAULTS, MemoryTier } from './storage/memory-tier.ts';
import { NamespaceGeneration } from './storage/namespace-generation.ts';
import {
  finiteNumber,
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
import { StatsRecorder, type CacheStats } from './observability/stats.ts';
import { TwoTierStore } from './storage/two-tier-store.ts';

/** Options of `get`. */
export interface GetOptions extends CallOptions, ResultOptions {}

/** Options of `set`. */
export interface SetOptions extends CallOptions {
  /** Seconds the value stays fresh. Zero or less stores an already-expired item. Default: `defaultTtlSeconds`. */
  ttlSeconds?: number | undefined;
  /** Seconds after `ttlSeconds` during which `getOrSet` may answer with the stale value while one caller refreshes it. Default: the instance's. */
  staleWhileRevalidateSeconds?: number | undefined;
  /** Seconds after `ttlSeconds` during which `getOrSet` answers with the stale value when the refresh fails. Default: the instance's. */
  staleIfErrorSeconds?: number | undefined;
}

/** Options of `getOrSet` (and `wrap`, and `acquire`). */
export interface GetOrSetOptions extends SetOptions, ResultOptions {
  /** Seconds a fetcher's `undefined` is cached as "not found" (`0`: not cached). Default: the instance's. */
  negativeTtlSeconds?: number | undefined;
  /** The refresh lease for this call: `false` to fetch without coordination, or options over the instance's. */
  lease?: boolean | LeaseOptions | undefined;
  /** Probabilistic early refresh for this call. Default: the instance's. */
  earlyRefresh?: boolean | EarlyRefreshOptions | undefined;
}

/** Options of `wrap`. */
export interface WrapOptions<TArgs extends unknown[]> extends Omit<GetOrSetOptions, keyof CallOptions> {
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

const GET_OPTIONS = [...CALL_OPTION_NAMES, 'onResult'] as const;
const SET_OPTIONS = [...CALL_OPTION_NAMES, 'ttlSeconds', 'staleWhileRevalidateSeconds', 'staleIfErrorSeconds'] as const;
const GET_OR_SET_OPTIONS = [...SET_OPTIONS, 'onResult', 'negativeTtlSeconds', 'lease', 'earlyRefresh'] as const;
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
  /** Stores the fetched value (a "not found" for `undefined` with `negativeTtlSeconds`). Resolves whether DynamoDB stored it. */
  fulfil(value: T | undefined, options?: SetOptions): Promise<boolean>;
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
  readonly #stats: StatsRecorder;
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
    this.#guard = new DynamoGuard({ timeoutMs: resolved.timeoutMs, cancel: resolved.cancel, retry: resolved.retry, breaker: resolved.breaker, logger: resolved.logger, stats: this.#stats });
    const dynamo = new DynamoStore({
      client: resolved.client,
      tableName: resolved.tableName,
      attributes: resolved.attributes,
      consistentRead: resolved.consistentRead,
      guard: this.#guard,
      stats: this.#stats,
    });
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
    });
    this.#refresh = new RefreshCoordinator(this.#store, this.#stats, resolved.logger, resolved.timeoutMs);
    // A flush elsewhere goes unseen at most as long as a memory-tier entry may: the same bound for both.
    const refreshSeconds = resolved.memory === false ? MEMORY_TIER_DEFAULTS.ttlSeconds : resolved.memory.ttlSeconds;
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
   * @throws InvalidOptionsError for a bad TTL or an unknown option.
   */
  async set(key: string, value: unknown, options: SetOptions = {}): Promise<boolean> {
    assertKey(key);
    const call = this.#call('set', options, SET_OPTIONS);
    const lifetime = this.#lifetime(options);
    const payload = encodeValue(value);
    if (this.disabled) return false;
    const written = await this.#store.write(await this.#slot(key, 'set', call), payload, deadlinesFor(lifetime, Date.now()), call);
    call.signal?.throwIfAborted();
    return written;
  }

  /**
   * The value under `key`; on a miss, calls `fetcher`, stores its result and returns it.
   *
   * Across execution environments, one caller wins the refresh lease and fetches while the others wait for
   * its value or answer from a stale one (`lease`, `staleWhileRevalidateSeconds`); no wait outlasts the
   * call's `deadline` (less `deadlineMarginMs`). In one process, concurrent calls for a key share one read
   * and one fetch, under the first caller's deadline. A fetcher that throws rejects every waiter and stores
   * nothing, unless a value within `staleIfErrorSeconds` can be answered instead. A fetcher that returns
   * `undefined` stores nothing (or a "not found" with `negativeTtlSeconds`).
   * @throws InvalidKeyError, InvalidOptionsError, InvalidValueError (for the fetcher's result); whatever `fetcher` throws;
   * the signal's reason when `options.signal` aborts.
   */
  async getOrSet<T>(key: string, fetcher: () => T | Promise<T>, options: GetOrSetOptions = {}): Promise<T> {
    assertKey(key);
    if (typeof fetcher !== 'function') throw new InvalidOptionsError('getOrSet needs a fetcher function');
    const call = this.#call('getOrSet', options, GET_OR_SET_OPTIONS);
    assertResultHook(options);
    const policy = this.#policy(options);
    if (this.disabled) {
      this.#stats.increment('fetches');
      const value = await fetcher();
      if (value !== undefined) encodeValue(value); // the same contract as when the cache is on
      reportResult(options, key, 'fetcher');
      return value;
    }
    const memoryKey = this.#keys.storageKey(key, 0);
    if (this.#inflight.has(memoryKey)) this.#stats.increment('coalesced');
    const answer = await this.#inflight.run(memoryKey, call, (own) => this.#resolveOrFetch(key, memoryKey, fetcher, policy, own));
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
  wrap<TArgs extends unknown[], TResult>(fn: (...args: TArgs) => TResult | Promise<TResult>, options: WrapOptions<TArgs> = {}): (...args: TArgs) => Promise<TResult> {
    if (typeof fn !== 'function') throw new InvalidOptionsError('wrap needs a function');
    if (typeof options !== 'object' || options === null) throw new InvalidOptionsError('wrap options must be an object');
    assertKnownOptions('wrap()', options, WRAP_OPTIONS);
    const { key, callOptions, ...getOrSetOptions } = options;
    if (key === undefined && fn.name === '') throw new InvalidOptionsError('wrap needs options.key for an anonymous function');
    if (key !== undefined && typeof key !== 'function') throw new InvalidOptionsError('wrap options.key must be a function');
    if (callOptions !== undefined && typeof callOptions !== 'function') throw new InvalidOptionsError('wrap options.callOptions must be a function');
    assertResultHook(getOrSetOptions);
    this.#policy(getOrSetOptions);
    const keyOf = key ?? ((...args: TArgs) => `${fn.name}:${JSON.stringify(args)}`);
    return (...args: TArgs) => this.getOrSet(keyOf(...args), () => fn(...args), callOptions === undefined ? getOrSetOptions : { ...getOrSetOptions, ...callOptions(...args) });
  }

  /**
   * The primitive behind `getOrSet`, for integrations that cannot pass a fetcher (the Middy middleware
   * fetches by running the handler): an answer from the cache, or the caller's turn to fetch, which it
   * must end with `fulfil`, `fail` or `abandon`. Lease, stale windows, early refresh and the call's
   * deadline apply as in `getOrSet`; the turn's own requests (its write) are bounded by the same deadline.
   * @throws InvalidKeyError, InvalidOptionsError; the signal's reason when `options.signal` aborts.
   */
  async acquire<T = unknown>(key: string, options: GetOrSetOptions = {}): Promise<Acquisition<T>> {
    assertKey(key);
    const call = this.#call('acquire', options, GET_OR_SET_OPTIONS);
    assertResultHook(options);
    const policy = this.#policy(options);
    if (this.disabled) {
      reportResult(options, key, 'fetcher');
      return { found: false, fulfil: async () => false, fail: async () => undefined, abandon: async () => {} };
    }
    const memoryKey = this.#keys.storageKey(key, 0);
    const resolution = await this.#refresh.resolve(await this.#slot(key, 'acquire', call, memoryKey), policy, call, this.#settle(key, 'acquire', call, memoryKey));
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
    let ended = false;
    const end = () => {
      if (ended) throw new InvalidOptionsError('a fetch turn can be ended only once');
      ended = true;
    };
    return {
      found: false,
      fulfil: async (value, setOptions) => {
        // Encoded first: a value that cannot be stored throws with the turn still open, so it can be abandoned.
        const payload = value === undefined ? undefined : encodeValue(value);
        end();
        return this.#refresh.complete(turn, payload, setOptions === undefined ? policy : { ...policy, ...this.#lifetime({ ...policy, ...setOptions }) });
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
    if (!Array.isArray(keys)) throw new InvalidOptionsError('getMany needs an array of keys');
    for (const key of keys) assertKey(key);
    const call = this.#call('getMany', options, CALL_OPTION_NAMES);
    const distinct = [...new Set(keys)];
    const result = new Map<string, T>();
    if (this.disabled) {
      this.#stats.increment('misses', distinct.length);
      return result;
    }
    const where = { operation: 'getMany', key: distinct.length === 1 ? this.#keys.storageKey(distinct[0]!, 0) : `${distinct.length} keys` };
    const generation = await this.#generation.current(where, call);
    const toRead: Array<{ key: string; slot: Slot & { storageKey: string } }> = [];
    for (const key of distinct) {
      const slot = this.#keys.slot(key, generation);
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
    if (!(generation instanceof Promise)) return this.#keys.slot(key, generation, memoryKey);
    return generation.then((known) => this.#keys.slot(key, known, memoryKey));
  }

  /** Waits, for a caller that coordinates through the lease, for a namespace generation DynamoDB was too busy to give (see `NamespaceGeneration.settle`). */
  #settle(key: string, operation: string, call: CallBudget, memoryKey: string): (untilMs: number) => Promise<Slot> {
    return async (untilMs) => this.#keys.slot(key, await this.#generation.settle({ operation, key: memoryKey }, call, untilMs), memoryKey);
  }

  /** Checks a call's options (type and names) and returns its budget. */
  #call(operation: string, options: CallOptions, known: readonly string[]): CallBudget {
    if (typeof options !== 'object' || options === null) throw new InvalidOptionsError(`${operation}() options must be an object`);
    assertKnownOptions(`${operation}() options`, options, known);
    if (options.signal === undefined && options.deadline === undefined) return UNBOUNDED;
    const call = callBudget(options, this.#options.deadlineMarginMs);
    call.signal?.throwIfAborted();
    return call;
  }

  /** Counts a miss, tells `onResult`, and answers `undefined`. */
  #missed(options: ResultOptions, key: string): undefined {
    this.#stats.increment('misses');
    reportResult(options, key, 'none');
    return undefined;
  }

  async #resolveOrFetch<T>(key: string, memoryKey: string, fetcher: () => T | Promise<T>, policy: RefreshPolicy, call: CallBudget): Promise<Answer> {
    const slot = this.#slot(key, 'getOrSet', call, memoryKey);
    const resolution = await this.#refresh.resolve(slot instanceof Promise ? await slot : slot, policy, call, this.#settle(key, 'getOrSet', call, memoryKey));
    if (resolution.found) return { payload: resolution.entry.payload, source: sourceOf(resolution), decoded: resolution.decoded };
    if (call.signal?.aborted) {
      // Every caller gave up: no fetch, and a lease won just now goes back at once.
      await this.#refresh.abandon(resolution.turn);
      call.signal.throwIfAborted();
    }
    return this.#fetch(resolution.turn, fetcher, policy);
  }

  async #fetch<T>(turn: Turn, fetcher: () => T | Promise<T>, policy: RefreshPolicy): Promise<Answer> {
    this.#stats.increment('fetches');
    let value: T;
    try {
      value = await fetcher();
    } catch (error) {
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
    await this.#refresh.complete(turn, payload, policy);
    // The fetcher's value itself goes to the first caller (the cache keeps only its encoded copy).
    return { payload, source: 'fetcher', decoded: { value } };
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
   * cannot be read, the fresh entry memory still holds past its recheck; or `undefined`.
   */
  async #readFresh(slot: Slot, call: CallBudget): Promise<{ entry: CacheEntry; source: 'memory' | 'dynamo'; decoded?: Decoded | undefined } | undefined> {
    const read = slot.storageKey === undefined ? undefined : await this.#store.read(slot as Slot & { storageKey: string }, call);
    if (read?.ok) {
      const entry = read.state.entry;
      return entry !== undefined && isFresh(entry, Date.now()) ? { entry, source: 'dynamo', decoded: read.state.decoded } : undefined;
    }
    const now = Date.now();
    const held = this.#store.held(slot, now)?.entry;
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

  #lifetime(options: SetOptions): Lifetime {
    const o = this.#options;
    return {
      ttlSeconds: options.ttlSeconds === undefined ? o.defaultTtlSeconds : finiteNumber('ttlSeconds', options.ttlSeconds),
      staleWhileRevalidateSeconds: nonNegativeNumber('staleWhileRevalidateSeconds', options.staleWhileRevalidateSeconds ?? o.staleWhileRevalidateSeconds),
      staleIfErrorSeconds: nonNegativeNumber('staleIfErrorSeconds', options.staleIfErrorSeconds ?? o.staleIfErrorSeconds),
    };
  }

  #policy(options: GetOrSetOptions): RefreshPolicy {
    const o = this.#options;
    return {
      ...this.#lifetime(options),
      negativeTtlSeconds: nonNegativeNumber('negativeTtlSeconds', options.negativeTtlSeconds ?? o.negativeTtlSeconds),
      lease: options.lease === undefined ? o.lease : resolveLease('lease', options.lease, o.lease),
      earlyRefresh: options.earlyRefresh === undefined ? o.earlyRefresh : resolveEarlyRefresh('earlyRefresh', options.earlyRefresh),
    };
  }
}

/** What a `getOrSet` flight resolves: the payload, where it came from, and a decoded value for its first caller. */
interface Answer {
  readonly payload: Payload | undefined;
  readonly source: CacheSource;
  readonly decoded?: Decoded | undefined;
}

/** Where a found answer came from, as `onResult` names it. */
function sourceOf(resolution: { readonly stale: boolean; readonly source: 'memory' | 'dynamo' }): CacheSource {
  return resolution.stale ? 'stale' : resolution.source === 'memory' ? 'memory' : 'dynamodb';
}

function decodeEntry(entry: CacheEntry): unknown {
  return entry.payload === undefined ? undefined : decodePayload(entry.payload);
}
