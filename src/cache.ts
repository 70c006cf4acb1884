import { ValueCodec, decodePayload, encodeValue, type Payload } from './codec.ts';
import { timingOf, type CacheEntry } from './entry.ts';
import { InvalidOptionsError } from './errors.ts';
import { deadlinesFor, isFresh, type Lifetime } from './freshness.ts';
import { KeyMapper, assertKey } from './keys.ts';
import type { CacheLogger } from './logger.ts';
import { MEMORY_TIER_DEFAULTS, MemoryTier } from './memory-tier.ts';
import { NamespaceGeneration } from './namespace-generation.ts';
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
import { DynamoStore } from './persistence/dynamo-store.ts';
import { RefreshCoordinator, type RefreshPolicy, type Turn } from './refresh.ts';
import { DynamoGuard, type CircuitStatus } from './resilience.ts';
import { StatsRecorder, type CacheStats } from './stats.ts';
import { TwoTierStore } from './two-tier-store.ts';

/** Options of `set`. */
export interface SetOptions {
  /** Seconds the value stays fresh. Zero or less stores an already-expired item. Default: `defaultTtlSeconds`. */
  ttlSeconds?: number;
  /** Seconds after `ttlSeconds` during which `getOrSet` may answer with the stale value while one caller refreshes it. Default: the instance's. */
  staleWhileRevalidateSeconds?: number;
  /** Seconds after `ttlSeconds` during which `getOrSet` answers with the stale value when the refresh fails. Default: the instance's. */
  staleIfErrorSeconds?: number;
}

/** Options of `getOrSet` (and `wrap`, and `acquire`). */
export interface GetOrSetOptions extends SetOptions {
  /** Seconds a fetcher's `undefined` is cached as "not found" (`0`: not cached). Default: the instance's. */
  negativeTtlSeconds?: number;
  /** The refresh lease for this call: `false` to fetch without coordination, or options over the instance's. */
  lease?: boolean | LeaseOptions;
  /** Probabilistic early refresh for this call. Default: the instance's. */
  earlyRefresh?: boolean | EarlyRefreshOptions;
}

/** Options of `wrap`. */
export interface WrapOptions<TArgs extends unknown[]> extends GetOrSetOptions {
  /**
   * The cache key of a call. Default: the function's name and its arguments as JSON
   * (`loadUser:["42"]`), which needs a named function and JSON arguments.
   */
  key?: (...args: TArgs) => string;
}

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
  /** The value is past its TTL, answered within `staleWhileRevalidateSeconds` while another caller refreshes. */
  readonly stale: boolean;
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
   * `absent` (no item), `fresh`, `stale` (past its TTL, inside a stale window), `expired` (not yet deleted
   * by DynamoDB's TTL), `not-found` (a cached "not found"), `lease` (only a refresh lease), or `unreadable`
   * (see `problem`; an encrypted item read without its key is unreadable too).
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

  readonly #options: ResolvedOptions;
  readonly #keys: KeyMapper;
  readonly #memory: MemoryTier | undefined;
  readonly #store: TwoTierStore;
  readonly #refresh: RefreshCoordinator;
  readonly #guard: DynamoGuard;
  readonly #generation: NamespaceGeneration;
  readonly #stats = new StatsRecorder();
  /** `getOrSet` calls in flight in this process, by storage key: concurrent calls for one key join them. */
  readonly #inflight = new Map<string, Promise<Payload | undefined>>();

  /** @throws InvalidOptionsError when an option is missing or wrong. */
  constructor(options: DynamoCacheOptions = {}) {
    const resolved = resolveOptions(options);
    this.#options = resolved;
    this.tableName = resolved.tableName;
    this.namespace = resolved.namespace;
    this.#keys = new KeyMapper(resolved.namespace, resolved.hashKeys);
    this.#memory = resolved.memory === false ? undefined : new MemoryTier(resolved.memory);
    this.#guard = new DynamoGuard({ timeoutMs: resolved.timeoutMs, retry: resolved.retry, breaker: resolved.breaker, logger: resolved.logger, stats: this.#stats });
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
      attributes: resolved.attributes,
      maxValueBytes: resolved.maxValueBytes,
      largeValueTimeoutMs: resolved.largeValueTimeoutMs,
      stats: this.#stats,
      logger: resolved.logger,
    });
    this.#refresh = new RefreshCoordinator(this.#store, this.#stats, resolved.logger);
    // A flush elsewhere goes unseen at most as long as a memory-tier entry may: the same bound for both.
    const refreshSeconds = resolved.memory === false ? MEMORY_TIER_DEFAULTS.ttlSeconds : resolved.memory.ttlSeconds;
    this.#generation = new NamespaceGeneration(dynamo, this.#keys.metaKey, refreshSeconds * 1000, resolved.logger);
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
   * The fresh value stored under `key`, or `undefined` on a miss (absent, expired, stale, a cached "not
   * found", or unreadable because of a cache failure). A cached `null` is a hit and resolves `null`.
   * @throws InvalidKeyError when `key` is not a non-empty string.
   */
  async get<T = unknown>(key: string): Promise<T | undefined> {
    assertKey(key);
    const storageKey = await this.#storageKey(key);
    if (storageKey === undefined) return this.#unavailable(undefined);
    const memory = this.#store.fromMemory(storageKey, Date.now());
    const entry = memory ?? (await this.#readFresh(storageKey));
    if (entry === undefined) {
      this.#stats.increment('misses');
      return undefined;
    }
    return this.#answer(entry, memory === undefined ? 'dynamo' : 'memory') as T | undefined;
  }

  /**
   * Stores `value` under `key`. Resolves `true` when DynamoDB stored it, `false` when a cache failure
   * prevented it (the memory tier still keeps it).
   * @throws InvalidKeyError when `key` is not a non-empty string.
   * @throws InvalidValueError when `value` cannot round-trip exactly (undefined, Date, NaN, a cycle...).
   * @throws InvalidOptionsError for a bad TTL.
   */
  async set(key: string, value: unknown, options: SetOptions = {}): Promise<boolean> {
    assertKey(key);
    const lifetime = this.#lifetime(options);
    const payload = encodeValue(value);
    const storageKey = await this.#storageKey(key);
    if (storageKey === undefined) return false;
    return this.#store.write(storageKey, payload, deadlinesFor(lifetime, Date.now()));
  }

  /**
   * The value under `key`; on a miss, calls `fetcher`, stores its result and returns it.
   *
   * Across execution environments, one caller wins the refresh lease and fetches while the others wait for
   * its value or answer from a stale one (`lease`, `staleWhileRevalidateSeconds`). In one process,
   * concurrent calls for a key share one read and one fetch. A fetcher that throws rejects every waiter
   * and stores nothing, unless a value within `staleIfErrorSeconds` can be answered instead. A fetcher
   * that returns `undefined` stores nothing (or a "not found" with `negativeTtlSeconds`).
   * @throws InvalidKeyError, InvalidOptionsError, InvalidValueError (for the fetcher's result); whatever `fetcher` throws.
   */
  async getOrSet<T>(key: string, fetcher: () => T | Promise<T>, options: GetOrSetOptions = {}): Promise<T> {
    assertKey(key);
    if (typeof fetcher !== 'function') throw new InvalidOptionsError('getOrSet needs a fetcher function');
    const policy = this.#policy(options);
    const storageKey = await this.#storageKey(key);
    if (storageKey === undefined) {
      this.#unavailable(undefined);
      this.#stats.increment('fetches');
      const value = await fetcher();
      if (value !== undefined) encodeValue(value); // the same contract as when DynamoDB is up
      return value;
    }
    let flight = this.#inflight.get(storageKey);
    if (flight === undefined) {
      flight = this.#resolveOrFetch(storageKey, fetcher, policy).finally(() => this.#inflight.delete(storageKey));
      this.#inflight.set(storageKey, flight);
    } else {
      this.#stats.increment('coalesced');
    }
    const payload = await flight;
    return (payload === undefined ? undefined : decodePayload(payload)) as T;
  }

  /**
   * Wraps `fn` so calls are answered from the cache, keyed by `options.key(...args)`.
   * @example const cachedLoad = cache.wrap(loadUser, { key: (id) => `user:${id}`, ttlSeconds: 60 });
   * @throws InvalidOptionsError when `fn` is not a function, or has no name and no `key` is given.
   */
  wrap<TArgs extends unknown[], TResult>(fn: (...args: TArgs) => TResult | Promise<TResult>, options: WrapOptions<TArgs> = {}): (...args: TArgs) => Promise<TResult> {
    if (typeof fn !== 'function') throw new InvalidOptionsError('wrap needs a function');
    const { key, ...getOrSetOptions } = options;
    if (key === undefined && fn.name === '') throw new InvalidOptionsError('wrap needs options.key for an anonymous function');
    if (key !== undefined && typeof key !== 'function') throw new InvalidOptionsError('wrap options.key must be a function');
    this.#policy(getOrSetOptions);
    const keyOf = key ?? ((...args: TArgs) => `${fn.name}:${JSON.stringify(args)}`);
    return (...args: TArgs) => this.getOrSet(keyOf(...args), () => fn(...args), getOrSetOptions);
  }

  /**
   * The primitive behind `getOrSet`, for integrations that cannot pass a fetcher (the Middy middleware
   * fetches by running the handler): an answer from the cache, or the caller's turn to fetch, which it
   * must end with `fulfil`, `fail` or `abandon`. Lease, stale windows and early refresh apply as in `getOrSet`.
   * @throws InvalidKeyError, InvalidOptionsError.
   */
  async acquire<T = unknown>(key: string, options: GetOrSetOptions = {}): Promise<Acquisition<T>> {
    assertKey(key);
    const policy = this.#policy(options);
    const storageKey = await this.#storageKey(key);
    if (storageKey === undefined) return this.#unavailable(unavailableTurn<T>());
    const resolution = await this.#refresh.resolve(storageKey, policy);
    if (resolution.found) return { found: true, value: decodeEntry(resolution.entry) as T | undefined, stale: resolution.stale };
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
   * @throws InvalidKeyError when any key is not a non-empty string.
   */
  async getMany<T = unknown>(keys: readonly string[]): Promise<Map<string, T>> {
    if (!Array.isArray(keys)) throw new InvalidOptionsError('getMany needs an array of keys');
    for (const key of keys) assertKey(key);
    // The key mapping is one-to-one, so each distinct key has its own storage key.
    const keyOf = new Map<string, string>();
    const generation = await this.#generation.current();
    if (generation === undefined) return this.#unavailable(new Map<string, T>(), new Set(keys).size);
    for (const key of keys) keyOf.set(this.#keys.storageKey(key, generation), key);
    const result = new Map<string, T>();
    const toRead: string[] = [];
    for (const storageKey of keyOf.keys()) {
      const entry = this.#store.fromMemory(storageKey, Date.now());
      if (entry === undefined) toRead.push(storageKey);
      else this.#collect(result, keyOf.get(storageKey)!, entry, 'memory');
    }
    if (toRead.length > 0) {
      const states = await this.#store.readMany(toRead);
      for (const storageKey of toRead) {
        const entry = states.get(storageKey)?.entry;
        if (entry !== undefined && isFresh(entry, Date.now())) this.#collect(result, keyOf.get(storageKey)!, entry, 'dynamo');
        else this.#stats.increment('misses');
      }
    }
    return result;
  }

  /**
   * Removes `key` from this environment's memory tier and from DynamoDB. Other environments stop serving
   * it from their memory tiers within `memory.ttlSeconds`. Resolves `false` when DynamoDB failed.
   * @throws InvalidKeyError when `key` is not a non-empty string.
   */
  async delete(key: string): Promise<boolean> {
    assertKey(key);
    const storageKey = await this.#storageKey(key);
    return storageKey === undefined ? false : this.#store.delete(storageKey);
  }

  /**
   * Flushes the namespace in O(1): one atomic write starts a new generation, which every stored key
   * includes, so all current values become unreachable at once (DynamoDB's TTL deletes them later). This
   * environment sees the flush at once; others within `memory.ttlSeconds` (30 s by default), when they
   * reread the generation. Resolves `false` when DynamoDB failed.
   */
  async clear(): Promise<boolean> {
    this.#memory?.clear();
    const generation = await this.#generation.bump();
    if (generation === undefined) return false;
    this.#options.logger.info('dynamo-cache: namespace flushed', { namespace: this.namespace, generation });
    return true;
  }

  /**
   * What DynamoDB holds for `key`: state, timing, encoding, size, lease, and the decoded value when
   * readable. For operators and tools; resolves `undefined` when DynamoDB failed (logged).
   * @throws InvalidKeyError when `key` is not a non-empty string.
   */
  async inspect(key: string): Promise<CacheItemInfo | undefined> {
    assertKey(key);
    const generation = await this.#generation.current();
    if (generation === undefined) return undefined;
    const storageKey = this.#keys.storageKey(key, generation);
    const found = await this.#store.inspect(storageKey);
    if (!found.ok) return undefined;
    const { record } = found;
    const base = { key, storageKey, generation, storedBytes: found.storedBytes, chunks: record?.chunked?.count ?? 0 };
    if (record === undefined) return { ...base, state: 'absent' };
    const marker = record.chunked?.marker ?? record.body?.marker;
    const steps = (marker ?? '').split('+').slice(1);
    const compression = steps.find((step) => step === 'br' || step === 'gzip');
    const encryptionKeyId = steps.find((step) => step.startsWith('aes256gcm:'))?.slice('aes256gcm:'.length);
    const timing = timingOf(record);
    const now = Date.now();
    let state: CacheItemInfo['state'];
    if (found.problem !== undefined) state = 'unreadable';
    else if (now >= timing.expiresAtMs) state = 'expired';
    else if (record.negative) state = 'not-found';
    else if (found.payload === undefined) state = 'lease';
    else state = isFresh(timing, now) ? 'fresh' : 'stale';
    return {
      ...base,
      state,
      ...(found.payload === undefined ? {} : { value: decodePayload(found.payload) }),
      ...(marker === undefined || record.negative ? {} : { encoding: marker }),
      ...(compression === undefined ? {} : { compression }),
      ...(encryptionKeyId === undefined ? {} : { encryptionKeyId }),
      expiresAt: new Date(timing.expiresAtMs),
      freshUntil: new Date(timing.freshUntilMs),
      ...(record.lease === undefined ? {} : { lease: { until: new Date(record.lease.untilMs), owner: record.lease.owner } }),
      ...(found.problem === undefined ? {} : { problem: found.problem }),
    };
  }

  /** Counters since this instance was created, the breaker's state and the memory tier's size. */
  stats(): CacheStatsSnapshot {
    return { ...this.#stats.snapshot(), circuit: this.#guard.circuit, memoryEntries: this.#memory?.size ?? 0, memoryBytes: this.#memory?.bytes ?? 0 };
  }

  /** The storage key of `key` in the current generation, or `undefined` when the generation cannot be read. */
  async #storageKey(key: string): Promise<string | undefined> {
    const generation = await this.#generation.current();
    return generation === undefined ? undefined : this.#keys.storageKey(key, generation);
  }

  /** DynamoDB is unavailable for this call (already logged): counts the misses and answers `result`. */
  #unavailable<R>(result: R, misses = 1): R {
    this.#stats.increment('misses', misses);
    return result;
  }

  async #resolveOrFetch<T>(storageKey: string, fetcher: () => T | Promise<T>, policy: RefreshPolicy): Promise<Payload | undefined> {
    const resolution = await this.#refresh.resolve(storageKey, policy);
    if (resolution.found) return resolution.entry.payload;
    return this.#fetch(resolution.turn, fetcher, policy);
  }

  async #fetch<T>(turn: Turn, fetcher: () => T | Promise<T>, policy: RefreshPolicy): Promise<Payload | undefined> {
    this.#stats.increment('fetches');
    let value: T;
    try {
      value = await fetcher();
    } catch (error) {
      const fallback = await this.#refresh.fail(turn, error);
      if (fallback === undefined) throw error;
      return fallback.payload;
    }
    let payload: Payload | undefined;
    try {
      payload = value === undefined ? undefined : encodeValue(value);
    } catch (error) {
      await this.#refresh.abandon(turn);
      throw error;
    }
    await this.#refresh.complete(turn, payload, policy);
    return payload;
  }

  /** A fresh entry from DynamoDB (which also fills the memory tier), or `undefined`. */
  async #readFresh(storageKey: string): Promise<CacheEntry | undefined> {
    const read = await this.#store.read(storageKey);
    const entry = read.ok ? read.state.entry : undefined;
    return entry !== undefined && isFresh(entry, Date.now()) ? entry : undefined;
  }

  /** Counts a hit and decodes the caller's copy (`undefined` for a cached "not found"). */
  #answer(entry: CacheEntry, source: 'memory' | 'dynamo'): unknown {
    this.#stats.increment('hits');
    this.#stats.increment(source === 'memory' ? 'memoryHits' : 'dynamoHits');
    if (entry.payload === undefined) this.#stats.increment('negativeHits');
    return decodeEntry(entry);
  }

  #collect<T>(result: Map<string, T>, key: string, entry: CacheEntry, source: 'memory' | 'dynamo'): void {
    const value = this.#answer(entry, source);
    if (entry.payload !== undefined) result.set(key, value as T);
  }

  #lifetime(options: SetOptions): Lifetime {
    if (typeof options !== 'object' || options === null) throw new InvalidOptionsError('options must be an object');
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

/** A fetch turn when DynamoDB is unavailable: the caller fetches, and there is nothing to store or give back. */
function unavailableTurn<T>(): FetchTurn<T> {
  return { found: false, fulfil: async () => false, fail: async () => undefined, abandon: async () => {} };
}

function decodeEntry(entry: CacheEntry): unknown {
  return entry.payload === undefined ? undefined : decodePayload(entry.payload);
}
